"""raynas: Neural Architecture Search as a Ray Tune plugin.

Core pieces live here (the :class:`Arch` value, benchmark tables, computation graphs,
trainables, data, CLI); search spaces, searchers and predictors are sibling packages.
Heavier members are imported on first use, so ``import raynas`` stays cheap and the
sibling packages can import :mod:`raynas.arch` without import cycles.
"""
from __future__ import annotations

import importlib
from typing import Any

from raynas.arch import Arch
from raynas.hashing import dag_hash

__version__ = "0.1.0"

_LAZY = {
    "TabularBenchmark": "raynas.benchmarks",
    "load_model": "raynas.export",
    "export_models": "raynas.export",
    "measure_latency": "raynas.latency",
}
__all__ = ["Arch", "dag_hash", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raynas' has no attribute {name!r}")
