"""NAGO's three random-graph levels and the network they generate.

A *level* is a random-graph model: Watts-Strogatz ``ws(n, k, p)`` or Erdos-Renyi
``er(n, p)``, drawn with networkx.  :func:`sample_dag` draws one undirected graph
(reproducibly: networkx gets a seed derived from the architecture's seed, the level and
the attempt), redraws a disconnected one up to ``max_tries`` times, and orients every
edge from the smaller to the larger node index, which makes it a DAG.

:class:`DagBlock` runs such a DAG over child modules: node ``i`` applies its module to the
sum of its predecessors' outputs (to the block input if it has none) and the block
returns the sum of the sinks (nodes without successors).  Every node of a DAG lies on a
path from a source to a sink, so every module is used.

:class:`NAGONetwork` nests three of them (Ru et al. 2020, "Neural Architecture Generator
Optimization"): the top-level DAG's nodes are cells, each cell is the middle-level DAG
of nodes, each node is the bottom-level DAG of operations (ReLU-conv3x3-BN by default).
All cells share one middle-level graph and all nodes one bottom-level graph.  The top
level's nodes are split into stages by index (stage ratio); stage ``s`` has width
``width * channel_ratio[s]`` and half the resolution of stage ``s - 1``; a top-level edge
that crosses stages goes through :class:`Resample` (ReLU, strided 1x1 conv, BN).  The sum
of the top-level sinks, brought to the last stage, is averaged and classified.
"""
from __future__ import annotations

from typing import Callable, Sequence

import networkx as nx
import numpy as np
import torch
from torch import nn

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


class ReLUConvBN(nn.Sequential):
    """ReLU, a ``kernel`` x ``kernel`` convolution (no bias), BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConvBN(nn.Sequential):
    """ReLU, depthwise 3x3 conv, pointwise conv, BatchNorm."""

    def __init__(self, channels: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )


def make_op(name: str, channels: int) -> nn.Module:
    """One bottom-level operation on ``channels`` channels (stride 1)."""
    factories: dict[str, Callable[[], nn.Module]] = {
        "conv3x3": lambda: ReLUConvBN(channels, channels, 3),
        "conv5x5": lambda: ReLUConvBN(channels, channels, 5),
        "sep_conv3x3": lambda: SepConvBN(channels),
    }
    if name not in factories:
        raise ValueError(f"op: {name!r} is not allowed; allowed values are {list(OPS)}")
    return factories[name]()


class Resample(ReLUConvBN):
    """A top-level edge into a later stage: ReLU, 1x1 conv with stride ``2**stages``, BN.

    A stride-``s`` 1x1 conv maps ``H`` to ``ceil(H / s)``, the size stage halving reaches."""

    def __init__(self, c_in: int, c_out: int, stages: int):
        super().__init__(c_in, c_out, 1, stride=2**stages)


class DagBlock(nn.Module):
    """Child modules wired by a DAG: node i sums its predecessors (the input if none);
    the output sums the sinks."""

    def __init__(self, dag: Dag, nodes: Sequence[nn.Module]):
        super().__init__()
        if len(dag) != len(nodes):
            raise ValueError(f"a DAG of {len(dag)} nodes needs {len(dag)} modules, got {len(nodes)}")
        self.preds = [list(ps) for ps in dag]
        self.sinks = list(sinks(dag))
        self.nodes = nn.ModuleList(nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for node, preds in zip(self.nodes, self.preds):
            outs.append(node(_sum([outs[u] for u in preds]) if preds else x))
        return _sum([outs[v] for v in self.sinks])


class NAGONetwork(nn.Module):
    """Stem, the top-level DAG of cells over stages, global average pool, linear classifier.

    Args:
        top, mid, bot: the three DAGs (cells, nodes per cell, ops per node).
        stages: stage of each top-level node (non-decreasing, from :func:`split_stages`).
        widths: channels of each stage.
        op: bottom-level operation, one of :data:`OPS`.
    """

    def __init__(
        self,
        top: Dag,
        mid: Dag,
        bot: Dag,
        stages: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_channels: int = 3,
        op: str = "conv3x3",
    ):
        super().__init__()
        if len(stages) != len(top) or list(stages) != sorted(stages) or max(stages) >= len(widths):
            raise ValueError(f"stages {list(stages)} must be non-decreasing stage indices, one per top-level node")
        self.top = [list(ps) for ps in top]
        self.top_sinks = list(sinks(top))
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]))

        def cell(width: int) -> DagBlock:
            return DagBlock(mid, [DagBlock(bot, [make_op(op, width) for _ in bot]) for _ in mid])

        self.cells = nn.ModuleList(cell(widths[s]) for s in stages)
        last = len(widths) - 1
        self.resample = nn.ModuleDict(
            {key: Resample(widths[a], widths[b], b - a) for key, a, b in stage_crossings(top, stages, last)}
        )
        self.head = nn.Sequential(nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(widths[last], num_classes)

    def _edge(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return self.resample[key](x) if key in self.resample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        outs: list[torch.Tensor] = []
        for v, (cell, preds) in enumerate(zip(self.cells, self.top)):
            inputs = [self._edge(f"{u}_{v}", outs[u]) for u in preds] or [self._edge(f"stem_{v}", stem)]
            outs.append(cell(_sum(inputs)))
        y = _sum([self._edge(f"{u}_out", outs[u]) for u in self.top_sinks])
        return self.classifier(torch.flatten(self.head(y), 1))


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


def _sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


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
