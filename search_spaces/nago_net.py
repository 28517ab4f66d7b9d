"""The network a NAGO architecture generates (its graphs: :mod:`search_spaces.nago_graphs`).

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

import torch
from torch import nn

from search_spaces.nago_graphs import OPS, Dag, sinks, stage_crossings


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


def _sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total
