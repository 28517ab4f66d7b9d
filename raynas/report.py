"""One self-contained HTML page about a finished experiment (``raynas report``): the search
trajectory, the Pareto front of several objectives, a sortable table of every trial, drawings of
the best architectures' cells, the settings and where the files are.

It only reads what the experiment folder holds (``raynas_settings.json``, ``trials.parquet``,
Tune's trial folders), so it works on a search's folder and on a ``raynas train`` folder alike;
missing columns and settings keys are left out of the page.  Images are inline PNG and the
sorting script is inline: the page opens from disk with no network.
"""
from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable

import networkx as nx
import numpy as np
import pyarrow as pa

from raynas.io import atomic_write, read_parquet
from raynas.results import pareto_table, plot_pareto, plot_trajectory
from search_spaces import SearchSpace, as_space

REPORT_FILE = "report.html"
SETTINGS_FILE = "raynas_settings.json"  # the name raynas.experiment writes
#: metrics shown first in the table, in this order, when a trial reported them
KNOWN_METRICS = ("val_acc", "test_acc", "train_loss", "ssl_loss", "knn_acc", "params", "flops", "latency_s", "epoch",
                 "simulated_time_s", "time_total_s", "device")  # fmt: skip
#: metrics named under an architecture's drawing, after the experiment's own
_SUMMARY_METRICS = ("val_acc", "test_acc", "train_loss", "ssl_loss", "knn_acc", "params", "flops", "epoch")
#: Tune's bookkeeping columns: in trials.parquet, not worth a column on the page
_BOOKKEEPING = {"config", "date", "experiment_tag", "hostname", "node_id", "node_ip", "pid", "timestamp",
                "iterations_since_restore", "time_since_restore", "time_this_iter_s", "training_iteration",
                "checkpoint_dir_name", "done", "should_checkpoint"}  # fmt: skip
_LOWER_IS_BETTER = ("loss", "params", "flops", "latency", "time")


def write_report(experiment_dir: str | Path, space: SearchSpace | None = None, top: int = 3) -> Path:
    """Write ``report.html`` into ``experiment_dir`` (a local folder holding ``trials.parquet``)
    and return its path.  ``space`` draws the cells when the experiment's space cannot be found
    by the name in its settings (a space defined in a user's file); without it such a report
    says why the drawings are missing.  ``top`` architectures get a drawing."""
    folder = Path(experiment_dir).expanduser().resolve()
    table = read_parquet(folder / "trials.parquet", what="trials table")
    settings = read_settings(folder)
    metric, mode = _metric(settings, table)
    objectives = _objectives(settings, table, metric)
    values = _floats(table, metric)
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        if np.isfinite(values).any():
            path = plot_trajectory(values, metric, mode, Path(tmp) / "trajectory.png")
            plots.append(("Search trajectory", f"{metric} of each trial in start order, and the best so far", path))
        front_ids: set[str] = set()
        if objectives:
            front = pareto_table(table, objectives)
            front_ids = set(front.column("trial_id").to_pylist()) if "trial_id" in front.column_names else set()
            if len(objectives) >= 2 and front.num_rows:
                path = plot_pareto(table, front, objectives, Path(tmp) / "pareto.png")
                plots.append(("Pareto front", f"{front.num_rows} trials that no other trial beats on every objective "
                              "(first two objectives drawn)", path))  # fmt: skip
        figures = [(title, caption, _png_uri(path.read_bytes())) for title, caption, path in plots]
    ranked = _ranked(table, values, mode)
    shown = list(dict.fromkeys([metric, *objectives, *_SUMMARY_METRICS]))
    cells, cell_note = _cells(settings, table, ranked, space, top, folder, shown)
    page = _page(folder, settings, table, metric, mode, objectives, ranked, figures, cells, cell_note, front_ids)
    return atomic_write(folder / REPORT_FILE, page)


def read_settings(folder: Path) -> dict[str, Any]:
    """``raynas_settings.json`` as a dict (any keys), or ``{}`` when the folder has none."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err.msg} at character {err.pos})") from None
    return settings if isinstance(settings, dict) else {}


def _metric(settings: dict[str, Any], table: pa.Table) -> tuple[str, str]:
    """The experiment's metric and mode: from the settings, else the first known metric reported."""
    names = table.column_names
    metric = settings.get("metric")
    if metric not in names:
        metric = next((m for m in KNOWN_METRICS if m in names), metric or "val_acc")
    mode = settings.get("mode") if settings.get("metric") == metric else None
    if mode not in ("max", "min"):
        mode = "min" if any(word in metric for word in _LOWER_IS_BETTER) else "max"
    return metric, mode


def _objectives(settings: dict[str, Any], table: pa.Table, metric: str) -> dict[str, str]:
    """The settings' objectives that the trials reported, the metric first (the settings file
    stores them with sorted keys); empty unless two or more remain."""
    given = settings.get("objectives") or {}
    if not isinstance(given, dict):
        return {}
    ordered = sorted(given.items(), key=lambda item: item[0] != metric)
    objectives = {k: v for k, v in ordered if k in table.column_names and v in ("max", "min")}
    return objectives if len(objectives) >= 2 else {}


def _floats(table: pa.Table, name: str) -> np.ndarray:
    """A column as floats (NaN where missing or not a number)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
                     for v in table.column(name).to_pylist()], dtype=float)  # fmt: skip


def _ranked(table: pa.Table, values: np.ndarray, mode: str) -> list[int]:
    """Rows with a finite metric, best first (start order among equals)."""
    finite = [i for i in range(table.num_rows) if math.isfinite(values[i])]
    return sorted(finite, key=lambda i: -values[i] if mode == "max" else values[i])


def _cells(
    settings: dict[str, Any], table: pa.Table, ranked: list[int], space: SearchSpace | None, top: int, folder: Path,
    shown: list[str],
) -> tuple[list[tuple[str, str, str]], str]:
    """``(heading, details, image URI)`` for the ``top`` distinct best architectures, and a note
    saying why there are none (or fewer) when a space or an architecture cannot be drawn.  The
    details name the ``shown`` metrics, the trial and its newest checkpoint."""
    if "arch" not in table.column_names or not ranked:
        return [], "No trial reported an architecture with the metric, so there is nothing to draw."
    name = settings.get("space")
    try:
        space = space or as_space(str(name))
    except Exception as err:  # a user's space by name only: its file is not known here
        return [], (f"The cells cannot be drawn: the search space {name!r} could not be loaded ({_short(err)}). "
                    "A space from your own file is found by name only in the process that defined it; "
                    "call raynas.report.write_report(folder, space=...) with the space object.")  # fmt: skip
    archs, rows = table.column("arch").to_pylist(), table.to_pylist()
    cells, problems, seen = [], [], set()
    for i in ranked:
        if len(cells) == top:
            break
        if not archs[i] or archs[i] in seen:
            continue
        seen.add(archs[i])
        try:
            image = _png_uri(draw_cell(space.cell_graph(space.parse(archs[i]))))
        except Exception as err:  # an arch of another space or version: say so, draw the others
            problems.append(f"{archs[i]}: {_short(err)}")
            continue
        checkpoint = trial_checkpoint(folder, rows[i].get("trial_id"))
        lines = [", ".join(f"{k} {_text(rows[i][k])}" for k in shown if rows[i].get(k) is not None)]
        lines += [f"trial {rows[i]['trial_id']}" if rows[i].get("trial_id") else ""]
        lines += [f"checkpoint {checkpoint.relative_to(folder)}" if checkpoint else ""]
        cells.append((f"#{len(cells) + 1}  {archs[i]}", "\n".join(line for line in lines if line), image))
    note = ("Some architectures could not be drawn: " + "; ".join(problems)) if problems else ""
    return cells, note


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:300]}"


def trial_checkpoint(folder: Path, trial_id: Any) -> Path | None:
    """The newest ``checkpoint_*`` folder of a trial (Tune names trial folders ``*_<id>_*``)."""
    if not trial_id:
        return None
    found = sorted(folder.glob(f"*_{trial_id}_*/checkpoint_*"))
    return found[-1] if found else None


# drawing --------------------------------------------------------------------------------------

_COLOURS: list[tuple[Callable[[str], bool], str]] = [
    (lambda op: op in ("input", "output", "sum", "concat") or op.startswith("output"), "#fde9b8"),
    (lambda op: op in ("none", "zero", "zeros"), "#ffffff"),
    (lambda op: "skip" in op or "identity" in op, "#e4e4e4"),
    (lambda op: "pool" in op, "#cdebd3"),
    (lambda op: "conv" in op, "#cfe0fa"),
]


def _colour(op: str) -> str:
    return next((colour for test, colour in _COLOURS if test(op.lower())), "#ead9f5")


def _layout(graph: nx.DiGraph, wrap: int = 7) -> tuple[dict[Any, tuple[float, float]], list[tuple[float, str]]]:
    """Top-to-bottom layers (longest path from an input) per connected part, parts side by side;
    a long chain is wrapped into columns of ``wrap``.  Also ``(x, name)`` of each part that has a
    ``cell`` or ``level`` attribute."""
    pos: dict[Any, tuple[float, float]] = {}
    labels: list[tuple[float, str]] = []
    left = 0.0
    for part in sorted(nx.weakly_connected_components(graph), key=min):
        sub = graph.subgraph(part)
        layer: dict[Any, int] = {}
        for v in nx.topological_sort(sub):
            layer[v] = max((layer[u] + 1 for u in sub.predecessors(v)), default=0)
        chain = all(sub.in_degree(v) <= 1 and sub.out_degree(v) <= 1 for v in sub)
        if chain and len(sub) > wrap:
            for v, k in layer.items():
                pos[v] = (left + 1.15 * (k // wrap), -float(k % wrap))
            width = 1.15 * ((len(sub) - 1) // wrap + 1)
        else:
            rows: dict[int, list] = {}
            for v in sorted(sub):
                rows.setdefault(layer[v], []).append(v)
            width = float(max(len(vs) for vs in rows.values()))
            for k, vs in rows.items():
                for j, v in enumerate(vs):
                    pos[v] = (left + (width - 1) / 2 + (j - (len(vs) - 1) / 2), -float(k))
        name = next((str(d[key]) for _, d in sub.nodes(data=True) for key in ("cell", "level") if key in d), None)
        if name:
            labels.append((left + (width - 1) / 2, name))
        left += width + 0.5
    return pos, labels


def draw_cell(graph: nx.DiGraph) -> bytes:
    """PNG of a cell graph, inputs at the top: one box per vertex labelled with its ``op``,
    arrows along the edges (curved where they skip a layer, away from the column they skip)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos, parts = _layout(graph)
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    top = max(ys) + (0.7 if parts else 0.0)
    fig, ax = plt.subplots(figsize=(0.3 + 1.25 * (max(xs) - min(xs) + 1), 0.3 + 0.5 * (top - min(ys) + 1)), dpi=100)
    boxes = {}
    for v, (x, y) in pos.items():
        op = str(graph.nodes[v].get("op", v))
        dashed = op.lower() in ("none", "zero")
        boxes[v] = ax.text(x, y, op, ha="center", va="center", fontsize=9, zorder=3,
                           bbox={"boxstyle": "round,pad=0.3", "facecolor": _colour(op), "edgecolor": "#666666",
                                 "linewidth": 0.8, "linestyle": "--" if dashed else "-"})  # fmt: skip
    for x, name in parts:
        ax.text(x, max(ys) + 0.7, f"{name} cell" if name in ("normal", "reduce") else name, ha="center", va="center",
                fontsize=10, fontweight="bold", color="#333333")  # fmt: skip
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.5, top + 0.5)
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    fig.canvas.draw()  # sizes the boxes, so the arrows below stop at their edges
    for u, v in graph.edges:
        skips = abs(pos[u][1] - pos[v][1]) > 1 and abs(pos[u][0] - pos[v][0]) < 1.1
        outward = _bend(pos, u, v)
        ax.annotate("", xy=pos[v], xytext=pos[u], zorder=2,
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 0.9, "shrinkA": 1, "shrinkB": 1,
                                "patchA": boxes[u].get_bbox_patch(), "patchB": boxes[v].get_bbox_patch(),
                                "connectionstyle": f"arc3,rad={outward if skips else 0.0}"})  # fmt: skip
    with tempfile.TemporaryFile() as out:
        fig.savefig(out, format="png")
        plt.close(fig)
        out.seek(0)
        return out.read()


def _bend(pos: dict, u: object, v: object) -> float:
    """The arc3 ``rad`` of an edge skipping rows (going down, a negative rad bends right): a
    slanted edge bends outwards, a vertical one to the side with fewer boxes on the rows it
    passes."""
    (ux, uy), (vx, vy) = pos[u], pos[v]
    if ux != vx:
        return -0.5 if ux > vx else 0.5
    between = [x for x, y in pos.values() if min(uy, vy) < y < max(uy, vy)]
    left, right = sum(ux - 1.1 < x < ux for x in between), sum(ux < x < ux + 1.1 for x in between)
    return 0.5 if left <= right else -0.5


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# the page -------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:0 20px 40px;color:#1d1d1f}
h1{font-size:22px;margin:22px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.summary{color:#444;margin:0 0 6px}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
#cells{grid-template-columns:repeat(auto-fill,minmax(380px,1fr))}figure.wide{grid-column:1/-1}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:8px;background:#fff}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}figcaption{font-size:12.5px;color:#555;margin-top:4px;overflow-wrap:anywhere}
figcaption b{display:block;color:#1d1d1f;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.scroll{overflow-x:auto;max-height:640px;overflow-y:auto;border:1px solid #e3e3e3;border-radius:6px}
table{border-collapse:collapse;font-size:12.5px;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.arch{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px}
table.sortable th{position:sticky;top:0;background:#f4f6f8;cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th:hover{background:#e8ecf0}th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.error td{background:#fff1f0}tr.front td:first-child{box-shadow:inset 3px 0 #d9534f}td.err{color:#a8071a;max-width:420px}
.note{background:#fffbe6;border:1px solid #ffe58f;border-radius:6px;padding:8px 12px}
table.kv{width:auto}table.kv td:first-child{color:#555;padding-right:18px}
"""

_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col];
        if (cell.hasAttribute("data-v")) return parseFloat(cell.getAttribute("data-v"));
        var text = cell.textContent.trim();
        return text === "" ? null : text;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return (x === null) - (y === null);  /* empty cells last */
        var d = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return asc ? d : -d;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
});
"""


def _text(value: Any) -> str:
    """A value as a person reads it: ``90.29``, ``830,426``, ``1.2e+08``."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if float(value).is_integer() and abs(value) < 1e7:
            return f"{int(value):,}"
        return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)  # in the order given: objectives keep theirs
    return str(value)


def _columns(table: pa.Table, metric: str, objectives: dict[str, str]) -> list[str]:
    names = table.column_names
    first = [c for c in ("trial_id", "status", "arch") if c in names]
    metrics = list(dict.fromkeys([metric, *objectives, *KNOWN_METRICS]))
    shown = [c for c in metrics if c in names]
    rest = [c for c in names if c not in first + shown + ["error"] and c not in _BOOKKEEPING]
    return first + shown + rest + (["error"] if "error" in names else [])


def _trials_table(table: pa.Table, metric: str, objectives: dict[str, str], front_ids: set[str]) -> str:
    columns = _columns(table, metric, objectives)
    head = "".join(f"<th scope=col>{html.escape(c)}</th>" for c in ["#", *columns])
    if front_ids:
        head += "<th scope=col>Pareto front</th>"
    body = []
    for n, row in enumerate(table.select(columns).to_pylist(), 1):
        cells = [f'<td class=num data-v="{n}">{n}</td>']
        for c in columns:
            value = row[c]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                cells.append(f'<td class=num data-v="{value!r}">{html.escape(_text(value))}</td>')
            else:
                kind = " class=arch" if c == "arch" else " class=err" if c == "error" else ""
                cells.append(f"<td{kind}>{html.escape(_text(value))}</td>")
        on_front = row.get("trial_id") in front_ids
        if front_ids:
            cells.append(f"<td>{'yes' if on_front else ''}</td>")
        classes = " ".join(k for k, on in (("error", bool(row.get("error")) or row.get("status") == "ERROR"),
                                          ("front", on_front)) if on)  # fmt: skip
        body.append(f"<tr{f' class={chr(34)}{classes}{chr(34)}' if classes else ''}>{''.join(cells)}</tr>")
    return (f'<div class=scroll><table class=sortable id=trials><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')  # fmt: skip


def _kv(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td class=mono>{html.escape(_text(v))}</td></tr>" for k, v in pairs)
    return f"<table class=kv>{rows}</table>"


def _figure(title: str, caption: str, uri: str, alt: str, span_above: int = 0) -> str:
    """A figure; one whose image is wider than ``span_above`` pixels spans the whole grid row."""
    width = int.from_bytes(base64.b64decode(uri.split(",", 1)[1][:32])[16:20], "big")  # the PNG header's width
    wide = " class=wide" if span_above and width > span_above else ""
    return (f'<figure{wide}><img src="{uri}" alt="{html.escape(alt)}"><figcaption><b>{html.escape(title)}</b>'
            f"{html.escape(caption).replace(chr(10), '<br>')}</figcaption></figure>")  # fmt: skip


def _files(folder: Path, table: pa.Table) -> list[tuple[str, Any]]:
    files: list[tuple[str, Any]] = [("experiment folder", str(folder))]
    for name in ("trials.parquet", "pareto.parquet", "search_trajectory.png", "pareto_front.png", SETTINGS_FILE, REPORT_FILE):
        if (folder / name).exists() or name == REPORT_FILE:
            files.append((name, str(folder / name)))
    checkpoints = sorted(folder.glob("*/checkpoint_*"))
    if checkpoints:
        trials = len({c.parent for c in checkpoints})
        files.append(("checkpoints", f"{len(checkpoints)} in {trials} trial folders: {folder}/<trial>/checkpoint_*"))
    else:
        files.append(("checkpoints", "none in this folder"))
    return files


def _page(
    folder: Path, settings: dict[str, Any], table: pa.Table, metric: str, mode: str, objectives: dict[str, str],
    ranked: list[int], figures: list[tuple[str, str, str]], cells: list[tuple[str, str, str]], cell_note: str,
    front_ids: set[str],
) -> str:  # fmt: skip
    name = settings.get("name") or folder.name
    failed = sum(1 for s in (table.column("status").to_pylist() if "status" in table.column_names else []) if s == "ERROR")
    facts = [f"{table.num_rows} trials" + (f", {failed} failed" if failed else "")]
    facts += [f"{k} {settings[k]}" for k in ("space", "searcher", "trainable", "dataset") if settings.get(k)]
    best = ""
    if ranked:
        row = table.slice(ranked[0], 1).to_pylist()[0]
        best = (f"<p class=summary>Best {html.escape(metric)} ({mode}): <b>{html.escape(_text(row.get(metric)))}</b>"
                f" &mdash; <code>{html.escape(str(row.get('arch') or ''))}</code></p>")  # fmt: skip
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>raynas report: {html.escape(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>raynas report: {html.escape(name)}</h1><p class=summary>{html.escape(' · '.join(facts))}</p>{best}",
    ]
    if figures:
        parts.append("<h2 id=plots>Search</h2><div class=figs>")
        parts += [_figure(t, c, uri, t) for t, c, uri in figures]
        parts.append("</div>")
    else:
        parts.append(f"<h2 id=plots>Search</h2><p class=note>No trial reported {html.escape(metric)}: nothing to plot.</p>")
    parts.append(f"<h2 id=best>Best architectures by {html.escape(metric)}</h2>")
    if cell_note:
        parts.append(f"<p class=note>{html.escape(cell_note)}</p>")
    if cells:
        parts.append("<div class=figs id=cells>")
        parts += [_figure(t, c, uri, f"cell of {t}", span_above=560) for t, c, uri in cells]
        parts.append("</div>")
    parts.append("<h2 id=trials-heading>Trials</h2><p class=summary>In start order; click a column header to sort "
                 "(again to reverse). Failed trials are shaded" + (", Pareto-front trials marked red at the left"
                 if front_ids else "") + ".</p>")  # fmt: skip
    parts.append(_trials_table(table, metric, objectives, front_ids))
    parts.append("<h2 id=settings>Settings</h2>")
    parts.append(_kv(sorted(settings.items())) if settings else f"<p class=note>This folder has no {SETTINGS_FILE}.</p>")
    parts.append("<h2 id=files>Files</h2>" + _kv(_files(folder, table)))
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)
