"""NAGO's random-graph levels, without torch: what a NAGO architecture is and how many
parameters its network has, so the space can be defined, sampled and checked before any
network is built (:mod:`search_spaces.nago_net` builds it).

A *level* is a random-graph model: Watts-Strogatz ``ws(n, k, p)`` or Erdos-Renyi
``er(n, p)``, drawn with networkx.  :func:`sample_dag` draws one undirected graph
(reproducibly: networkx gets a seed derived from the architecture's seed, the level and
the attempt), redraws a disconnected one up to ``max_tries`` times, and orients every
edge from the smaller to the larger node index, which makes it a DAG.
"""
from __future__ import annotations

from typing import Callable, Sequence

import networkx as nx
import numpy as np

#: preds[i] = the predecessors of node i (all smaller than i)
Dag = tuple[tuple[int, ...], ...]

OPS: tuple[str, ...] = ("conv3x3", "conv5x5", "sep_conv3x3")
LEVELS: tuple[str, ...] = ("top", "mid", "bot")


def effective_k(n: int, k: int) -> int:
    """The ring degree networkx's Watts-Strogatz model really uses for ``(n, k)``.

    ``k`` is clamped to ``n - 1`` (networkx rejects ``k > n`` and returns a complete graph
    for ``k == n``); networkx then joins every node to ``k // 2`` neighbours on each side,
    so an odd ``k`` draws exactly the graphs of ``k - 1``.
    """
    return 2 * (min(k, n - 1) // 2)


def draw_graph(kind: str, n: int, k: int, p: float, seed: int) -> nx.Graph:
    """One undirected draw of ``ws(n, k, p)`` or ``er(n, p)`` (``k`` is ignored by ``er``)."""
    if kind == "ws":
        return nx.watts_strogatz_graph(n, effective_k(n, k), p, seed=seed)
    if kind == "er":
        return nx.erdos_renyi_graph(n, p, seed=seed)
    raise ValueError(f"graph model {kind!r} is not allowed; allowed models are ['ws', 'er']")


def level_seed(seed: int, level: int, attempt: int) -> int:
    """networkx seed of ``attempt`` at ``level`` (independent streams per level and attempt)."""
    return int(np.random.SeedSequence([seed, level, attempt]).generate_state(1)[0])


def sample_dag(kind: str, n: int, k: int, p: float, seed: int, level: int = 0, max_tries: int = 100) -> Dag:
    """A connected draw of the model as a DAG (edges point from lower to higher index).

    Raises:
        ValueError: no connected graph in ``max_tries`` draws (low ``p`` with few nodes).
    """
    for attempt in range(max_tries):
        graph = draw_graph(kind, n, k, p, level_seed(seed, level, attempt))
        if nx.is_connected(graph):
            preds: list[list[int]] = [[] for _ in range(n)]
            for u, v in graph.edges:
                preds[max(u, v)].append(min(u, v))
            return tuple(tuple(sorted(ps)) for ps in preds)
    model = f"ws(n={n}, k={k}, p={p})" if kind == "ws" else f"er(n={n}, p={p})"
    raise ValueError(
        f"{LEVELS[level] if level < len(LEVELS) else level} level: no connected {model} graph in {max_tries} draws "
        f"(seed {seed}); raise p or the node count, or allow more draws with the space option max_tries"
    )


def sinks(dag: Dag) -> tuple[int, ...]:
    """Nodes no other node reads."""
    used = {u for ps in dag for u in ps}
    return tuple(v for v in range(len(dag)) if v not in used)


def split_stages(n: int, ratio: Sequence[int]) -> tuple[int, ...]:
    """Stage of each of ``n`` top-level nodes: consecutive runs sized by ``ratio``
    (largest remainders, at least one node per stage)."""
    if n < len(ratio):
        raise ValueError(f"{n} top-level nodes cannot fill {len(ratio)} stages; use at least {len(ratio)} nodes")
    shares = np.asarray(ratio, dtype=float) / sum(ratio) * n
    counts = np.maximum(np.floor(shares).astype(int), 1)
    while counts.sum() < n:
        counts[int(np.argmax(shares - counts))] += 1
    while counts.sum() > n:
        counts[int(np.argmax(np.where(counts > 1, counts - shares, -np.inf)))] -= 1
    return tuple(s for s, c in enumerate(counts) for _ in range(int(c)))


def stage_crossings(top: Dag, stages: Sequence[int], last: int) -> list[tuple[str, int, int]]:
    """``(key, from stage, to stage)`` of every top-level edge that changes stage: cell to
    cell, stem to a source cell, sink cell to the classifier (which reads the last stage)."""
    edges = [(f"{u}_{v}", stages[u], stages[v]) for v, ps in enumerate(top) for u in ps]
    edges += [(f"stem_{v}", 0, stages[v]) for v, ps in enumerate(top) if not ps]
    edges += [(f"{u}_out", stages[u], last) for u in sinks(top)]
    return [(key, a, b) for key, a, b in edges if a != b]


def network_params(
    top: Dag, mid: Dag, bot: Dag, stages: Sequence[int], widths: Sequence[int], num_classes: int, in_channels: int, op: str
) -> int:
    """Parameter count of ``NAGONetwork(...)`` with these arguments, without building it."""
    per_op = {"conv3x3": lambda c: 9 * c * c + 2 * c, "conv5x5": lambda c: 25 * c * c + 2 * c,
              "sep_conv3x3": lambda c: 9 * c + c * c + 2 * c}[op]  # fmt: skip
    stem = 9 * in_channels * widths[0] + 2 * widths[0]
    cells = sum(len(mid) * len(bot) * per_op(widths[s]) for s in stages)
    resample = sum(widths[a] * widths[b] + 2 * widths[b] for _, a, b in stage_crossings(top, stages, len(widths) - 1))
    return stem + cells + resample + (widths[-1] + 1) * num_classes


def width_for_budget(count: Callable[[int], int], budget: int, max_width: int = 4096) -> int:
    """Largest base width ``w`` (``1 <= w <= max_width``) whose network has at most ``budget``
    parameters; ``count(w)`` is that count, which grows with ``w`` (binary search)."""
    if count(1) > budget:
        raise ValueError(
            f"param_budget: {budget} is not allowed for this architecture; width 1 already has "
            f"{count(1)} parameters, so the budget must be >= {count(1)}"
        )
    lo, hi = 1, max_width
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
