"""Objects named on the command line: ``path/to/file.py:NAME`` or ``package.module:NAME``.

A module loaded from a file is registered with cloudpickle to be pickled *by value*: Ray ships
the user's functions (a model builder, a condition) to workers that could not import the file
by name.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


def is_object_spec(spec: str) -> bool:
    """Whether ``spec`` names an object (``file.py:NAME`` or ``module:NAME``), not a registry name."""
    target, sep, name = spec.rpartition(":")
    return bool(sep and target and name.isidentifier())


def load_object(spec: str, what: str = "object", file: str = "file") -> Any:
    """The object ``NAME`` of ``path/to/file.py:NAME`` or ``package.module:NAME``; errors call
    it a ``what`` (e.g. "function") and the file a ``file`` (e.g. "model file")."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        example = "path/to/model.py:function_name" if what == "function" else "path/to/file.py:NAME"
        raise ValueError(f"expected {example} or package.module:NAME, got {spec!r}")
    module = _module_from_file(Path(target), file) if target.endswith(".py") or "/" in target else _module(target)
    if not hasattr(module, name):
        defined = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ValueError(f"{target} defines no {what} {name!r}; it defines {defined}")
    return getattr(module, name)


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ValueError(f"cannot import module {name!r}: {err}") from err


def _module_from_file(path: Path, file: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"no such {file}: {path}")
    name = f"raynas_user_{path.stem}_{hashlib.md5(str(path.resolve()).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent.resolve()))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    finally:
        sys.path.pop(0)
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module
