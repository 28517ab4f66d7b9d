"""One progress line for a running search, in place of Tune's per-trial boxes and tables.

A Tune ``Callback`` counts trials done / running / errored, keeps the best result so far with
its architecture, and draws ``[ 5/16 done, 2 running, 0 errored] best val_acc 61.56 |...|
elapsed 0:42, ETA 1:30``: redrawn in place on a terminal (at most twice a second), and as one
printed line per finished trial in a log file, so a log holds no half-drawn lines.
"""
from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

from ray import tune


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class SearchProgress(tune.Callback):
    """The progress of ``total`` trials on ``metric`` (``mode`` max or min).

    Counts come from the trials' statuses at each event, so a resumed experiment (whose
    Tuner unpickles this callback) counts the trials it finished before as done.
    """

    def __init__(self, total: int, metric: str, mode: str, stream: IO[str] | None = None):
        self.total, self.metric, self.mode = total, metric, mode
        self.stream = stream
        self.counts = {"done": 0, "running": 0, "errored": 0}
        self.best: tuple[float, str] | None = None
        self.start = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks with the experiment
        return {**self.__dict__, "stream": None}

    @property
    def out(self) -> IO[str]:
        return self.stream or sys.stderr

    # ------------------------------------------------------------------ Tune's hooks
    def setup(self, **info: Any) -> None:
        self.start = time.monotonic()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._update(trials, result)
        self._draw()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trials, finished=trial)
        self._draw(finished=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trials, errored=trial)
        self._draw(finished=True)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._update(trials)
        self._draw()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._update(trials)
        if self.out.isatty():
            self._draw(force=True)
            self.out.write("\n")
            self.out.flush()

    # ------------------------------------------------------------------ the line
    def _update(self, trials: list, result: dict | None = None, finished: Any = None, errored: Any = None) -> None:
        """Counts from the statuses (the trial an event is about counted as that event says:
        Tune updates its status after the callbacks); the best from every last result."""
        status = {t.trial_id: t.status for t in trials}
        if finished is not None:
            status[finished.trial_id] = "TERMINATED"
        if errored is not None:
            status[errored.trial_id] = "ERROR"
        values = list(status.values())
        self.counts = {"done": values.count("TERMINATED"), "running": values.count("RUNNING"), "errored": values.count("ERROR")}
        for r in [t.last_result for t in trials] + [result or {}]:
            value = (r or {}).get(self.metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                if self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0]):
                    self.best = (float(value), str(r.get("arch", "")))

    def line(self) -> str:
        """The progress line as it stands."""
        elapsed = time.monotonic() - self.start
        c = self.counts
        finished = c["done"] + c["errored"]
        text = f"[{finished:>{len(str(self.total))}}/{self.total} done, {c['running']} running, {c['errored']} errored]"
        if self.best is not None:
            text += f"  best {self.metric} {self.best[0]:.4g}  {self.best[1]}"
        text += f"  elapsed {_clock(elapsed)}"
        if 0 < finished < self.total:
            text += f", ETA {_clock(elapsed / finished * (self.total - finished))}"
        return text

    def _draw(self, finished: bool = False, force: bool = False) -> None:
        now = time.monotonic()
        if self.out.isatty():
            if not force and now - self._drawn < 0.5:
                return
            text = self.line()
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
        elif finished:
            self.out.write(self.line() + "\n")
        else:
            return
        self.out.flush()
        self._drawn = now
