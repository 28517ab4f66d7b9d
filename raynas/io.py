"""Files raynas writes and reads: every write is atomic, every read error names the file.

A search, an embedding extraction or a predictor save can be killed at any moment (a
pre-empted node, Ctrl-C, a full disk).  Everything raynas writes therefore goes to a
temporary file beside its destination and is renamed over it once complete, so a reader
sees the previous file or the new one, never half of one.  Reads turn I/O and format
failures into errors that say which file and what was expected in it.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

#: the two files of a saved model directory (see :func:`save_dir`)
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is flushed to disk and
    renamed over ``path`` (atomic on POSIX), on any error removed.  A crash mid-write thus
    leaves the previous file whole, and only hidden ``.<name>.*.tmp`` debris at worst."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:  # the rename must not reach the disk before the data
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def atomic_pickle(obj: Any, path: str | Path) -> Path:
    """Pickle ``obj`` to ``path`` atomically."""
    return atomic_write(path, pickle.dumps(obj))


def write_parquet_atomic(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` to ``path`` atomically, so readers never see half a file."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_parquet(path: str | Path, what: str = "benchmark table", columns: Sequence[str] = ()) -> pa.Table:
    """Read a Parquet table, turning I/O and format failures and missing ``columns`` into
    errors that name the file (as ``what``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist (expected a Parquet file)")
    if path.is_dir():  # pyarrow would read every file below it as one dataset (think of "/")
        raise ValueError(f"{what} {path} is a directory; give the Parquet file itself")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise ValueError(f"{what} {path} is not a readable Parquet file: {err}") from err
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{what} {path} lacks columns {missing}; has {table.column_names}")
    return table


def save_dir(path: str | Path, weights: Any, config: dict[str, Any]) -> Path:
    """The one on-disk layout of a saved model: ``path/weights.pt`` (``weights``, anything
    ``torch.save`` takes, loaded back with ``weights_only=True`` so a saved model cannot run
    code) and ``path/config.json`` (``config``: settings and histories a person can read).
    Both are written completely before either is renamed into place."""
    import torch

    path = Path(path)
    with atomic_path(path / WEIGHTS_FILE) as weights_tmp, atomic_path(path / CONFIG_FILE) as config_tmp:
        torch.save(weights, weights_tmp)
        config_tmp.write_text(json.dumps(config, indent=1))
    return path


def load_dir(path: str | Path, kind: str) -> tuple[dict[str, Any], Any]:
    """``(config, weights)`` of a directory written by :func:`save_dir`; ``kind`` names what
    was expected there in the error when a file is missing."""
    import torch

    path = Path(path)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path} is not a saved {kind}: missing {missing}")
    return json.loads((path / CONFIG_FILE).read_text()), torch.load(path / WEIGHTS_FILE, weights_only=True)
