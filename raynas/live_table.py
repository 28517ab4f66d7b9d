"""``trials.parquet`` kept current while a search runs, so that a driver that dies or a disk
that fills loses no trial already reported.

A Tune ``Callback`` rewrites the table of the finished trials (the same table
:func:`raynas.results.trials_table` writes at the end) when a trial ends, unless the last
write was so recent that writing again would spend more than ``1 / SHARE`` of the time
writing (a few rows: every trial; 10,000: every few seconds).  The write is atomic: a failed
one (a full disk, a read-only mount) leaves the previous table whole, and the search goes on,
as Tune's own writes do; the driver reports the fault when it writes the final table.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
from ray import tune

from raynas.io import write_parquet_atomic
from raynas.results import trials_table, with_earlier

TABLE = "trials.parquet"
#: the time between two writes is at least this many times the last write's duration
SHARE = 20


class LiveTrialsTable(tune.Callback):
    """Writes ``folder/trials.parquet`` with every finished trial as trials end."""

    def __init__(self, folder: str | Path, earlier: pa.Table | None = None):
        self.path = Path(folder) / TABLE
        self.earlier = earlier  # the trials of the run this one continues, kept first
        self.rows = 0  # trials in the table on disk
        self._next = -math.inf

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(trials, trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(trials, trial, failed=True)

    def _write(self, trials: list, ended: Any, failed: bool) -> None:
        start = time.monotonic()
        if start < self._next:
            return
        # Tune calls back before it marks the ended trial, so its status may still say RUNNING
        finished = [(t, t.status == "ERROR") for t in trials if t is not ended and t.status in ("TERMINATED", "ERROR")]
        finished.append((ended, failed))
        try:
            table = with_earlier(trials_table([_as_result(t, f) for t, f in finished]), self.earlier)
            write_parquet_atomic(table, self.path)
            self.rows = table.num_rows
        except OSError:  # the previous table stands; the final write reports the fault
            pass
        end = time.monotonic()
        self._next = end + SHARE * (end - start)


def _as_result(trial: Any, failed: bool) -> SimpleNamespace:
    """The fields of a Tune ``Result`` that :func:`trials_table` reads, from a ``Trial``."""
    error = None
    if failed:
        try:
            error = trial.get_pickled_error() or trial.get_error()
        except OSError:  # the error file is not in storage (yet, or the disk refused it)
            error = None
        error = error or RuntimeError("the trial failed (its error file could not be read)")
    return SimpleNamespace(metrics=trial.last_result, path=trial.path, error=error, config=trial.config)
