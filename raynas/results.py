"""What a finished search leaves behind besides Tune's own files: ``trials.parquet`` (one
row per trial) and ``search_trajectory.png`` (best-so-far against trials); with several
objectives also ``pareto.parquet`` (the non-dominated trials) and ``pareto_front.png``."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

_SKIP = {"config", "done", "should_checkpoint", "checkpoint_dir_name"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def error_cause(error: BaseException | None) -> str | None:
    """``"FloatingPointError: non-finite training loss ..."``: the exception that failed a trial,
    without Ray's wrappers (task errors, actor deaths), tracebacks or terminal colours."""
    if error is None:
        return None
    while getattr(error, "cause", None) is not None and error.cause is not error:
        error = error.cause
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    own = f"{type(error).__name__}: "
    if type(error).__module__.startswith("ray.") and lines:  # a wrapper whose cause is only text
        last = next((line for line in reversed(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", line)), lines[-1])
        return last
    return own + (lines[-1] if lines else "")


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
            "error": error_cause(result.error),
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


def with_earlier(table: pa.Table, earlier: pa.Table | None) -> pa.Table:
    """``earlier``'s rows (a run this one continued) then ``table``'s; a column either lacks is null."""
    if earlier is None or earlier.num_rows == 0:
        return table
    return pa.concat_tables([earlier, table], promote_options="permissive")


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


def _maximised(points: np.ndarray | Sequence[Sequence[float]], modes: Sequence[str]) -> np.ndarray:
    """``points`` (rows x objectives) with each ``min`` column negated: larger is better everywhere."""
    signs = np.array([1.0 if m == "max" else -1.0 for m in modes])
    points = np.asarray(points, dtype=float).reshape(-1, len(modes))
    return points * signs


def pareto_mask(points: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Which rows of ``points`` (trials x objectives) no other row dominates (BoTorch's
    ``is_non_dominated``); rows with a NaN are never on the front, and equal rows are all kept."""
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    scores = _maximised(points, modes)
    finite = np.isfinite(scores).all(axis=1)
    mask = np.zeros(len(scores), dtype=bool)
    if finite.any():
        mask[finite] = is_non_dominated(torch.from_numpy(scores[finite]), deduplicate=False).numpy()
    return mask


def hypervolume(points: np.ndarray, modes: Sequence[str], reference: Sequence[float]) -> float:
    """Volume dominated by ``points`` (n x m) and bounded by ``reference``, in the objectives'
    own units (BoTorch's ``Hypervolume``): for ``("max", "min")`` the area above reference[0]
    and below reference[1].  Points that do not improve on the reference in every objective
    add nothing."""
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    if len(modes) != len(reference) or len(modes) < 2:
        raise ValueError(f"hypervolume needs 2 or more objectives and a reference value for each, got {list(modes)}, {list(reference)}")
    scores = _maximised(points, modes)
    bound = _maximised([reference], modes)[0]
    scores = scores[np.isfinite(scores).all(axis=1) & (scores > bound).all(axis=1)]
    if not len(scores):
        return 0.0
    front = torch.from_numpy(scores[pareto_mask(scores, ["max"] * len(modes))])
    return float(Hypervolume(torch.from_numpy(bound)).compute(front))


def pareto_table(table: pa.Table, objectives: dict[str, str]) -> pa.Table:
    """The trials of ``table`` on the Pareto front of ``objectives`` (name -> max/min),
    sorted by the first objective, best first."""
    names = list(objectives)
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ValueError(f"objectives {missing} are not reported metrics; the trials table has {table.column_names}")
    points = np.array([[np.nan if v is None else float(v) for v in table.column(n).to_pylist()] for n in names]).T
    rows = np.flatnonzero(pareto_mask(points.reshape(-1, len(names)), list(objectives.values())))
    first = points[rows, 0] if len(rows) else np.array([])
    order = rows[np.argsort(-first if objectives[names[0]] == "max" else first, kind="stable")]
    return table.take(pa.array(order, type=pa.int64()))


def plot_pareto(table: pa.Table, front: pa.Table, objectives: dict[str, str], path: str | Path, title: str = "") -> Path:
    """All trials and the Pareto front of the first two objectives (x: the second, y: the first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_name, x_name = list(objectives)[:2]

    def column(t: pa.Table, name: str) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in t.column(name).to_pylist()])

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.scatter(column(table, x_name), column(table, y_name), s=14, alpha=0.5, label="trials")
    fx, fy = column(front, x_name), column(front, y_name)
    order = np.argsort(fx)
    ax.step(fx[order], fy[order], where="post", color="C3", marker="o", label=f"Pareto front ({len(fx)})")
    xs = column(table, x_name)
    if np.nanmin(xs, initial=np.inf) > 0 and np.nanmax(xs, initial=0) > 20 * np.nanmin(xs, initial=np.inf):
        ax.set_xscale("log")  # parameter counts span orders of magnitude
    ax.set_xlabel(f"{x_name} ({objectives[x_name]})")
    ax.set_ylabel(f"{y_name} ({objectives[y_name]})")
    ax.set_title(title or f"Pareto front: {objectives[y_name]} {y_name}, {objectives[x_name]} {x_name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
