"""What a finished search leaves behind besides Tune's own files: ``trials.parquet`` (one
row per trial) and ``search_trajectory.png`` (best-so-far against trials)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_SKIP = {"config", "done", "should_checkpoint", "checkpoint_dir_name"}


def write_parquet_atomic(table: pa.Table, path: str | Path) -> Path:
    """Write to a temporary file beside ``path`` and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def trials_table(results: Any) -> pa.Table:
    """One row per trial of a Tune ``ResultGrid``: id, status, arch, config (JSON), the last
    value of every reported metric, and timings; in trial start order."""
    rows: list[dict[str, Any]] = []
    for result in results:
        metrics = dict(result.metrics or {})
        trial_id = metrics.get("trial_id") or Path(result.path).name
        row: dict[str, Any] = {
            "trial_id": str(trial_id),
            "status": "ERROR" if result.error else "TERMINATED",
            "error": str(result.error).splitlines()[0] if result.error else None,
            "arch": metrics.get("arch"),
            "config": json.dumps(result.config, sort_keys=True, default=str),
        }
        for key, value in metrics.items():
            if key not in _SKIP and key not in row and isinstance(value, (int, float, str, bool, np.number)):
                row[key] = value.item() if isinstance(value, np.number) else value
        rows.append(row)
    rows.sort(key=lambda r: (r.get("timestamp", 0) - r.get("time_total_s", 0), r["trial_id"]))
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("trial_id", "status", "arch"), k))
    return pa.table({c: _column([r.get(c) for r in rows]) for c in columns})


def _column(values: list[Any]) -> pa.Array:
    """Arrow column; a metric that is numeric in some trials and text in others becomes text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values])


def best_so_far(values: Sequence[float], mode: str) -> np.ndarray:
    """Running best of ``values`` (NaN for failed trials is skipped)."""
    arr = np.asarray(values, dtype=float)
    arr = np.where(np.isnan(arr), -np.inf if mode == "max" else np.inf, arr)
    return np.maximum.accumulate(arr) if mode == "max" else np.minimum.accumulate(arr)


def plot_trajectory(values: Sequence[float], metric: str, mode: str, path: str | Path, title: str = "") -> Path:
    """Each trial's ``metric`` and the best so far, against trials in start order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    x = np.arange(1, len(values) + 1)
    ax.scatter(x, values, s=12, alpha=0.5, label=f"{metric} of each trial")
    ax.step(x, best_so_far(values, mode), where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(title or f"search trajectory ({mode} {metric})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if mode == "max" else "upper right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
