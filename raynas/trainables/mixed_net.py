"""Mixed-op (continuous) forward passes over the weight-sharing supernets, for differentiable search.

DARTS relaxes the choice of an op on every edge to a weighted sum of all candidate ops; GDAS
runs only the sampled op of every edge, multiplied by its (straight-through) one-hot weight.
:class:`MixedOpNetwork` runs either over the NB201 / DARTS supernets of
:mod:`raynas.trainables.supernet_net` (the same op modules, the same skeleton), so a
derived cell is a path of that supernet and an ordinary :class:`~raynas.arch.Arch` of the space.
The forward itself is :func:`mixed_forward`, which the supernet trainer's soft one-shot
warm-up also runs (with :func:`uniform_weights`, or :func:`leaned_weights` toward each step's path).

Edge weights are one ``(edges, ops)`` matrix per cell type, rows in the space's edge order:

* NB201: one matrix of 6 x 5 (edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; ops ``NB201_OPS``).
* DARTS: a normal and a reduce matrix of 14 x 7: node k (0..3) takes every input i < k + 2,
  rows ``(k=0, i=0), (0, 1), (1, 0), ...``; ops ``DARTS_OPS`` (no ``none`` op, as in NB301).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from raynas.arch import Arch
from raynas.trainables.supernet_net import NB201SuperCell, build_supernet
from search_spaces import SearchSpace
from search_spaces.vocabulary import DARTS_OPS, NB201_EDGES, NB201_OPS

#: (edge, input) rows of a DARTS cell's weight matrix
DARTS_EDGES: tuple[tuple[int, int], ...] = tuple((k, i) for k in range(4) for i in range(k + 2))
#: the op that the skip-connection collapse of DARTS favours
SKIP = "skip_connect"


def weight_shapes(space: str) -> list[tuple[int, int]]:
    """The ``(edges, ops)`` shape of each cell type's weight matrix."""
    if space == "nb201":
        return [(len(NB201_EDGES), len(NB201_OPS))]
    if space == "darts":
        return [(len(DARTS_EDGES), len(DARTS_OPS))] * 2
    raise ValueError(f"no differentiable search over space {space!r}; allowed spaces are ['nb201', 'darts']")


def mixed_edge(ops: nn.ModuleDict, names: Sequence[str], x: torch.Tensor, w: torch.Tensor, active: int | None) -> torch.Tensor:
    """``sum_o w[o] * op_o(x)`` over every op (``active`` None), or ``w[active] * op(x)`` only (GDAS)."""
    if active is not None:
        return w[active] * ops[names[active]](x)
    out = w[0] * ops[names[0]](x)
    for o in range(1, len(names)):
        out = out + w[o] * ops[names[o]](x)
    return out


class MixedOpNetwork(nn.Module):
    """The supernet of ``space`` run with continuous edge weights.

    ``forward(x, weights, active=None)``: ``weights`` holds one matrix per cell type (see the
    module docstring); ``active`` (GDAS) one index tensor per matrix, the op each edge runs.
    :attr:`supernet` is the plain supernet, whose ``forward(x, path)`` runs one sub-network.
    """

    def __init__(self, space: str, num_classes: int, in_shape: tuple[int, int, int], build: dict[str, Any], affine: bool):
        super().__init__()
        self.space = space
        weight_shapes(space)  # the space has a relaxation
        self.supernet = build_supernet(space, num_classes, in_shape, build, affine)

    def forward(self, x: torch.Tensor, weights: Sequence[torch.Tensor], active: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        return mixed_forward(self.supernet, x, weights, active)


def mixed_forward(
    supernet: nn.Module, x: torch.Tensor, weights: Sequence[torch.Tensor], active: Sequence[torch.Tensor] | None = None
) -> torch.Tensor:
    """Logits of ``supernet`` (an NB201 or DARTS supernet) run with continuous edge ``weights``
    (see :class:`MixedOpNetwork`); the supernet's single-path training also uses it, with uniform
    weights, as its soft one-shot warm-up."""
    picks = None if active is None else [a.tolist() for a in active]
    if supernet.space == "nb201":
        return _nb201(supernet, x, weights[0], None if picks is None else picks[0])
    if supernet.space == "darts":
        return _darts(supernet, x, weights, picks)
    raise ValueError(f"no mixed-op forward for the {supernet.space!r} supernet; allowed spaces are ['nb201', 'darts']")


def uniform_weights(space: str, device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Equal weights on every op of every edge (each edge outputs the mean of its ops)."""
    return [torch.full(shape, 1.0 / shape[1], device=device) for shape in weight_shapes(space)]


def leaned_weights(space: str, spec: Any, alpha: float, device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """:func:`uniform_weights` leaned by ``alpha`` toward the path ``spec`` (the study's
    ``softoneshot``): on each edge of the path its op gets ``1/n + alpha`` and every other op
    ``1/n - alpha/(n-1)``, so a row still sums to 1; DARTS edges off the path stay uniform."""
    weights = uniform_weights(space, device)
    if space == "nb201":
        picks = [[(e, NB201_OPS.index(op)) for e, op in enumerate(spec)]]
    else:
        picks = [[(DARTS_EDGES.index((j // 2, i)), DARTS_OPS.index(op)) for j, (op, i) in enumerate(cell)] for cell in spec]
    for w, cell in zip(weights, picks):
        n = w.shape[1]
        for edge, op in cell:
            w[edge] -= alpha / (n - 1)
            w[edge, op] += alpha * n / (n - 1)
    return weights


def _nb201(net: nn.Module, x: torch.Tensor, w: torch.Tensor, pick: list[int] | None) -> torch.Tensor:
    x = net.stem(x)
    for block in net.cells:
        if not isinstance(block, NB201SuperCell):
            x = block(x)
            continue
        nodes = [x]
        for j in range(1, 4):  # node j sums its edges in the stand-alone cell's order
            total = None
            for e, (to, source) in enumerate(NB201_EDGES):
                if to == j:
                    h = mixed_edge(block.edges[e], NB201_OPS, nodes[source], w[e], None if pick is None else pick[e])
                    total = h if total is None else total + h
            nodes.append(total)
        x = nodes[3]
    return net.head(x)


def _darts(net: nn.Module, x: torch.Tensor, weights: Sequence[torch.Tensor], picks: list[list[int]] | None) -> torch.Tensor:
    s0 = s1 = net.stem(x)
    for cell in net.cells:
        c = 1 if cell.reduction else 0
        w, pick = weights[c], None if picks is None else picks[c]
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        for k in range(4):
            total = None
            for e, (node, i) in enumerate(DARTS_EDGES):
                if node == k:
                    h = mixed_edge(cell.edges[f"{k}_{i}"], DARTS_OPS, states[i], w[e], None if pick is None else pick[e])
                    total = h if total is None else total + h
            states.append(total)
        s0, s1 = s1, torch.cat(states[2:], dim=1)
    return net.head(s1)


def derive(space: SearchSpace, probs: Sequence[torch.Tensor]) -> Arch:
    """The discrete architecture of edge probabilities ``probs`` (one matrix per cell type).

    NB201: the most likely op of each edge (``none`` included, as NB201's DARTS baselines do).
    DARTS: each node keeps its two inputs whose best op is most likely, with that op (DARTS'
    ``genotype()``; the NB301 op set has no ``none`` to exclude).
    """
    if space.name == "nb201":
        return space.make(tuple(NB201_OPS[o] for o in probs[0].argmax(1).tolist()))
    cells = []
    for p in probs:
        strength, best = p.max(1)
        cell: list[tuple[str, int]] = []
        for k in range(4):
            rows = [e for e, (node, _) in enumerate(DARTS_EDGES) if node == k]
            top = sorted(sorted(rows, key=lambda e: -float(strength[e]))[:2], key=lambda e: DARTS_EDGES[e][1])
            cell.extend((DARTS_OPS[int(best[e])], DARTS_EDGES[e][1]) for e in top)
        cells.append(tuple(cell))
    return space.make(tuple(cells))


def skip_count(arch: Arch) -> int:
    """Skip-connections of the searched cell (DARTS: the normal cell), the collapse signal."""
    if arch.space == "nb201":
        return sum(op == SKIP for op in arch.spec)
    return sum(op == SKIP for op, _ in arch.spec[0])
