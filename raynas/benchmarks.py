"""Tabular NAS benchmarks read from Parquet files the user points at.

Accuracy columns follow ``<dataset>_<split>_acc`` with an optional ``_<N>ep`` suffix for a
shorter schedule (``cifar10_valid_acc``, ``cifar10_test_acc_12ep``), so any dataset prefix
works.  NASLib-style tables (``val_accuracy``, optionally a ``dataset`` column; CIFAR-10 when
absent) are read as ``<dataset>_valid_acc``.  Look-ups match the architecture as written
first and fall back to its canonical key, so an isomorphic spelling still finds its row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raynas.arch import Arch
from raynas.io import read_parquet
from search_spaces import SearchSpace, as_space

SPLITS = ("valid", "test")
#: length of the full training schedule of each benchmark, in epochs
FULL_SCHEDULE = {"nb201": 200, "nb101": 108, "darts": 100, "nb301": 100}
#: optional table columns -> (reported name, scale to the reported unit)
EXTRA_COLUMNS: dict[str, tuple[str, float]] = {
    "params_m": ("params", 1e6),
    "params": ("params", 1e6),
    "flops_m": ("flops", 1e6),
    "flops": ("flops", 1e6),
    "latency_s": ("latency_s", 1.0),
    "train_time_per_epoch_s": ("train_time_per_epoch_s", 1.0),
    "train_time_total_s": ("train_time_s", 1.0),
}
_ACC_COLUMN = re.compile(r"^(?P<dataset>[a-z0-9]+)_(?P<split>valid|test)_acc(?:_(?P<epochs>\d+)ep)?$")


@dataclass
class TabularBenchmark:
    """Answers accuracy and cost queries for the architectures of one table and dataset.

    Build it with :meth:`from_parquet`; ``query(arch, split, epochs)`` returns a percentage.
    """

    space: SearchSpace
    dataset: str
    archs: list[Arch]
    metrics: dict[tuple[str, int | None], np.ndarray]
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    full_epochs: int | None = None
    path: str = ""
    _by_text: dict[str, int] = field(init=False, repr=False)
    _by_key: dict[str, list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_text = {}
        self._by_key = {}
        for row, arch in enumerate(self.archs):
            self._by_text.setdefault(arch.text, row)
            self._by_key.setdefault(arch.key, []).append(row)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_parquet(
        cls,
        path: str | Path,
        space: SearchSpace | str,
        dataset: str = "cifar10",
        full_epochs: int | None = None,
    ) -> "TabularBenchmark":
        """Load the rows of ``path`` for ``dataset`` (any ``<dataset>_*_acc`` prefix)."""
        space = as_space(space)
        table = read_parquet(path)
        names = table.column_names
        accuracy = _accuracy_columns(names, table)
        datasets = sorted({d for _, d, _, _ in accuracy})
        if dataset not in datasets:
            raise ValueError(f"dataset {dataset!r} is not in {path}; datasets present: {datasets}")
        if "dataset" in names and "val_accuracy" in names:
            keep = np.asarray(table.column("dataset").to_pylist()) == dataset
            table = table.filter(pa.array(keep))
        rows = table.select([c for c in space.record_columns() if c in names]).to_pylist()
        try:
            archs = [space.arch_from_record(r) for r in rows]
        except (ValueError, KeyError) as err:
            raise ValueError(f"benchmark table {path} holds a row that is not a {space.name} architecture: {err}") from err
        metrics = {
            (split, epochs): _float_column(table, column, path)
            for column, d, split, epochs in accuracy
            if d == dataset
        }
        extras = {
            name: _float_column(table, column, path) * scale
            for column, (name, scale) in EXTRA_COLUMNS.items()
            if column in names
        }
        return cls(
            space=space,
            dataset=dataset,
            archs=archs,
            metrics=metrics,
            extras=extras,
            full_epochs=full_epochs if full_epochs is not None else FULL_SCHEDULE.get(space.name),
            path=str(path),
        )

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.archs)

    def __contains__(self, arch: Arch) -> bool:
        return arch.text in self._by_text or arch.key in self._by_key

    def __iter__(self) -> Iterator[Arch]:
        return iter(self.archs)

    def rows(self, arch: Arch) -> list[int]:
        """Row numbers answering for ``arch``: its own row, else every row of its class."""
        if arch.space != self.space.name:
            raise ValueError(f"arch of space {arch.space!r} queried in a {self.space.name!r} benchmark")
        if arch.text in self._by_text:
            return [self._by_text[arch.text]]
        if arch.key in self._by_key:
            return self._by_key[arch.key]
        raise KeyError(f"architecture {arch} (key {arch.key}) is not in benchmark {self.path or self.space.name}")

    def available(self) -> list[tuple[str, int | None]]:
        """(split, epochs) pairs this table answers; ``epochs=None`` is the full schedule."""
        return sorted(self.metrics, key=lambda m: (m[0], m[1] or 10**9))

    def _metric(self, split: str, epochs: int | None) -> tuple[str, int | None]:
        """Key of :attr:`metrics`: the full schedule is stored as ``epochs=None``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        return split, None if epochs == self.full_epochs else epochs

    def has(self, split: str, epochs: int | None = None) -> bool:
        """Whether the table answers ``split`` after ``epochs``."""
        return self._metric(split, epochs) in self.metrics

    def column(self, split: str = "valid", epochs: int | None = None) -> np.ndarray:
        """Accuracy of every row, aligned with :attr:`archs` (for vectorised benchmarking)."""
        split, epochs = self._metric(split, epochs)
        try:
            return self.metrics[(split, epochs)]
        except KeyError:
            raise ValueError(
                f"{self.path or 'table'} has no {self.dataset} {split} accuracy for epochs={epochs}; "
                f"available (split, epochs): {self.available()}"
            ) from None

    def query(self, arch: Arch, split: str = "valid", epochs: int | None = None) -> float:
        """Accuracy (percent) of ``arch`` on ``split`` after ``epochs`` (None: full schedule)."""
        values = self.column(split, epochs)
        return float(np.mean(values[self.rows(arch)]))

    def info(self, arch: Arch) -> dict[str, float]:
        """Cost columns present in the table: params (count), flops, latency_s, train_time_s, ..."""
        rows = self.rows(arch)
        return {name: float(np.mean(values[rows])) for name, values in self.extras.items()}

    def short_schedules(self, split: str = "valid") -> list[int]:
        """Shorter training schedules (epochs) the table holds for ``split``, ascending."""
        return sorted(e for s, e in self.metrics if s == split and e is not None)


def table_datasets(path: str | Path) -> list[str]:
    """The datasets a table answers for (its ``<dataset>_*_acc`` prefixes), read from its schema."""
    names = _column_names(path)
    table = read_parquet(path) if {"val_accuracy", "dataset"} <= set(names) else None
    return sorted({d for _, d, _, _ in _accuracy_columns(names, table)})


def check_table(path: str | Path, space: SearchSpace | str, dataset: str | None) -> str:
    """The dataset a search on ``path`` reads (``dataset``, or the table's only one), after
    checking that the table's rows are architectures of ``space``: a table of another space
    is named with the space whose architectures it holds."""
    space = as_space(space)
    datasets = table_datasets(path)
    if dataset is None:
        if len(datasets) > 1:
            raise ValueError(f"benchmark table {path} holds the datasets {datasets}; choose one with --dataset")
        dataset = datasets[0]
    elif dataset not in datasets:
        raise ValueError(f"dataset {dataset!r} is not in benchmark table {path}; datasets present: {datasets}")
    columns = [c for c in space.record_columns() if c in _column_names(path)]
    rows = read_parquet(path).slice(0, 3).select(columns).to_pylist() if columns else []
    try:
        if not rows:
            raise ValueError(f"it has none of the columns {space.record_columns()}")
        for row in rows:
            space.arch_from_record(row)
    except (ValueError, KeyError) as err:
        raise ValueError(f"benchmark table {path} does not hold {space.name} architectures ({err}){_space_hint(path)}") from None
    return dataset


def _space_hint(path: str | Path) -> str:
    """``"; it holds X architectures: use --space X"`` for the first built-in space whose architectures the table holds."""
    from search_spaces import available_spaces, get_space

    names = _column_names(path)
    table = read_parquet(path).slice(0, 3)
    for name in available_spaces():
        space = get_space(name)
        if name != space.name:  # an alias
            continue
        columns = [c for c in space.record_columns() if c in names]
        try:
            if columns and all(space.arch_from_record(r) for r in table.select(columns).to_pylist()):
                return f"; it holds {name} architectures: use --space {name}"
        except (ValueError, KeyError, TypeError):
            continue
    return ""


def _column_names(path: str | Path) -> list[str]:
    """The table's column names, from its footer alone."""
    if not Path(path).is_file():
        read_parquet(path)  # the error that says what is there instead
    try:
        return pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"benchmark table {path} is not a readable Parquet file: {err}") from err


def _accuracy_columns(names: list[str], table: pa.Table) -> list[tuple[str, str, str, int | None]]:
    """(column, dataset, split, epochs) for every accuracy column of the table."""
    found: list[tuple[str, str, str, int | None]] = []
    for name in names:
        match = _ACC_COLUMN.match(name)
        if match:
            epochs = match.group("epochs")
            found.append((name, match.group("dataset"), match.group("split"), int(epochs) if epochs else None))
    if "val_accuracy" in names:
        if "dataset" in names:
            column = table.column("dataset")
            if not pa.types.is_string(column.type) or column.null_count:
                raise ValueError(f"column 'dataset' must hold dataset names (text, no nulls), has {column.type} "
                                 f"with {column.null_count} nulls")  # fmt: skip
        datasets = set(table.column("dataset").to_pylist()) if "dataset" in names else {"cifar10"}
        found.extend(("val_accuracy", d, "valid", None) for d in sorted(datasets))
    if not found:
        raise ValueError(
            f"no accuracy columns found; expected '<dataset>_<split>_acc[_<N>ep]' or 'val_accuracy', got {names}"
        )
    return found


def _float_column(table: pa.Table, column: str, path: Any) -> np.ndarray:
    try:
        values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowInvalid, TypeError, ValueError) as err:
        raise ValueError(f"column {column!r} of {path} must be numeric: {err}") from err
    return values
