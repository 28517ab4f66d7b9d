"""Weight-sharing supernets of the NB201 and DARTS cell spaces (NB101's, with dynamic
channels, is :mod:`raynas.trainables.supernet_nb101`; all three are built by :func:`build_supernet`).

A supernet holds, on every edge of every cell, one module per candidate op, built by the
space's own ``make_op`` (the modules stand-alone networks train; no second copy of the
ops), inside the stand-alone network's own skeleton (``NB201Network`` / ``NetworkCIFAR``
with their ``make_cell`` overridden).  ``forward(x, path)`` runs one sub-network: ``path``
is the architecture's spec (``arch.spec``), one op per edge and, for DARTS, the two inputs
of every node.  :func:`extract_subnet` copies the inherited weights of a path into a fresh
stand-alone network, which then computes exactly what the supernet computes on that path.
"""
from __future__ import annotations

from typing import Any, Hashable, Sequence

import torch
from torch import nn

from raynas.trainables.supernet_nb101 import NB101Supernet
from search_spaces import darts_net, nb201_net
from search_spaces.darts_net import NetworkCIFAR, drop_path
from search_spaces.nb201_net import NB201Network


def _edge_output(module: nn.Module, x: torch.Tensor, training: bool, drop_prob: float) -> torch.Tensor:
    """One sampled op on one edge; path dropout (DARTS' per-sample ``drop_path``) spares identities."""
    h = module(x)
    if training and drop_prob > 0 and not isinstance(module, nn.Identity):
        h = drop_path(h, drop_prob)
    return h


class NB201SuperCell(nn.Module):
    """An NB201 cell whose six edges each hold every op: ``edges[k][op]``.

    Node j sums edge(i -> j)(node i) over i < j, in the stand-alone cell's order, so a path
    gives bit-identical outputs to :class:`~search_spaces.nb201_net.NB201Cell`.
    """

    EDGES = nb201_net.NB201Cell.EDGES

    def __init__(self, channels: int, affine: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: nb201_net.make_op(op, channels, affine) for op in nb201_net.OPS}) for _ in self.EDGES
        )

    def forward(self, x: torch.Tensor, path: Sequence[str], drop_prob: float = 0.0) -> torch.Tensor:
        nodes = [x]
        k = 0
        for j in range(1, 4):
            total = _edge_output(self.edges[k][path[k]], nodes[0], self.training, drop_prob)
            for i in range(1, j):
                total = total + _edge_output(self.edges[k + i][path[k + i]], nodes[i], self.training, drop_prob)
            k += j
            nodes.append(total)
        return nodes[3]


class NB201Supernet(NB201Network):
    """The NB201 network with :class:`NB201SuperCell` cells; ``path`` is an NB201 spec (6 ops)."""

    space = "nb201"

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, C: int = 16, N: int = 5, affine: bool = True, dropout: float = 0.0
    ):
        super().__init__((), num_classes, in_channels, C, N, affine)
        self.options = {"num_classes": num_classes, "in_channels": in_channels, "C": C, "N": N, "affine": affine}
        self.dropout = nn.Dropout(dropout)  # no state: the stand-alone network (eval) computes the same

    def make_cell(self, ops: Sequence[str], channels: int, affine: bool) -> nn.Module:
        return NB201SuperCell(channels, affine)

    def forward(self, x: torch.Tensor, path: Sequence[str], drop_prob: float = 0.0) -> torch.Tensor:  # type: ignore[override]
        x = self.stem(x)
        for block in self.cells:
            x = block(x, path, drop_prob) if isinstance(block, NB201SuperCell) else block(x)
        return self.head(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last cell's output (shared by the single-path and the mixed-op forward)."""
        x = self.lastact(x)
        return self.classifier(self.dropout(torch.flatten(self.global_pooling(x), 1)))

    def standalone(self, path: Sequence[str]) -> nn.Module:
        """A fresh stand-alone network of ``path`` with this supernet's shape."""
        return NB201Network(path, **self.options)

    def subnet_key(self, key: str, path: Sequence[str]) -> str | None:
        """Stand-alone name of supernet parameter ``key`` on ``path``; None when off the path."""
        parts = key.split(".")
        if len(parts) > 4 and parts[0] == "cells" and parts[2] == "edges":
            if parts[4] != path[int(parts[3])]:
                return None
            del parts[4]
        return ".".join(parts)


class DartsSuperCell(darts_net.Cell):
    """A DARTS cell holding every op on every (node, input) edge: ``edges["k_i"][op]``.

    A path's cell spec picks two ``(op, input)`` pairs per node; summation order follows
    the genotype, as in :class:`~search_spaces.darts_net.Cell`.
    """

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        affine_ops: bool = True,
        pool_bn: bool = False,
    ):
        super().__init__((), c_prev_prev, c_prev, channels, reduction, reduction_prev, affine_ops, pool_bn)
        self.edges = nn.ModuleDict(
            {
                f"{k}_{i}": nn.ModuleDict(
                    {
                        op: darts_net.make_op(op, channels, 2 if reduction and i < 2 else 1, affine_ops, pool_bn)
                        for op in darts_net.OPS
                    }
                )
                for k in range(4)
                for i in range(k + 2)
            }
        )

    def forward(  # type: ignore[override]
        self, s0: torch.Tensor, s1: torch.Tensor, cell: Sequence[tuple[str, int]], drop_prob: float = 0.0
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(cell) // 2):
            total = None
            for op, i in cell[2 * k : 2 * k + 2]:
                h = _edge_output(self.edges[f"{k}_{i}"][op], states[i], self.training, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(NetworkCIFAR):
    """The DARTS network with :class:`DartsSuperCell` cells; ``path`` is a (normal, reduce) spec."""

    space = "darts"

    def __init__(
        self,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        C: int = 16,
        layers: int = 8,
        stem_multiplier: int = 3,
        affine_ops: bool = True,
        pool_bn: bool = False,
        dropout: float = 0.0,
    ):
        options = {
            "num_classes": num_classes,
            "in_shape": in_shape,
            "C": C,
            "layers": layers,
            "stem_multiplier": stem_multiplier,
            "affine_ops": affine_ops,
            "pool_bn": pool_bn,
        }
        super().__init__((), (), **options)
        self.options = options
        self.dropout = nn.Dropout(dropout)  # no state: the stand-alone network (eval) computes the same

    def make_cell(
        self,
        ops: darts_net.CellSpec,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        affine_ops: bool,
        pool_bn: bool,
    ) -> nn.Module:
        return DartsSuperCell(c_prev_prev, c_prev, channels, reduction, reduction_prev, affine_ops, pool_bn)

    def forward(self, x: torch.Tensor, path: Any, drop_prob: float = 0.0) -> torch.Tensor:  # type: ignore[override]
        normal, reduce = path
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal, drop_prob)
        return self.head(s1)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last cell's output (shared by the single-path and the mixed-op forward)."""
        return self.classifier(self.dropout(torch.flatten(self.global_pooling(x), 1)))

    def standalone(self, path: Any) -> nn.Module:
        return NetworkCIFAR(path[0], path[1], **self.options)

    def subnet_key(self, key: str, path: Any) -> str | None:
        parts = key.split(".")
        if len(parts) > 4 and parts[0] == "cells" and parts[2] == "edges":
            cell = path[1] if self.cells[int(parts[1])].reduction else path[0]
            k, i = (int(v) for v in parts[3].split("_"))
            entries = [j for j in (2 * k, 2 * k + 1) if cell[j] == (parts[4], i)]
            if not entries:
                return None
            parts[2:5] = ["ops", str(entries[0])]
        return ".".join(parts)


SUPERNETS: dict[str, type[nn.Module]] = {"nb201": NB201Supernet, "darts": DartsSupernet, "nb101": NB101Supernet}
BUILD_OPTIONS: dict[str, tuple[str, ...]] = {
    "nb201": ("C", "N"),
    "darts": ("C", "layers", "stem_multiplier", "pool_bn"),
    "nb101": ("stem_channels", "num_stacks", "num_modules_per_stack"),
}
DEFAULT_BUILD: dict[str, dict[str, Any]] = {
    "nb201": {"C": 16, "N": 5},
    "darts": {"C": 16, "layers": 8},
    "nb101": {"stem_channels": 128, "num_stacks": 3, "num_modules_per_stack": 3},
}


def build_supernet(
    space: str,
    num_classes: int,
    in_shape: tuple[int, int, int],
    build: dict[str, Any],
    affine: bool = True,
    dropout: float = 0.0,
) -> nn.Module:
    """The supernet of ``space`` ("nb201", "darts" or "nb101"); ``build`` takes the stand-alone
    network's size options (NB201: C, N; DARTS: C, layers, stem_multiplier, pool_bn; NB101:
    stem_channels, num_stacks, num_modules_per_stack);
    ``dropout`` is applied before the classifier in training."""
    if space not in SUPERNETS:
        raise ValueError(f"no supernet for space {space!r}; allowed spaces are {list(SUPERNETS)}")
    unknown = sorted(set(build) - set(BUILD_OPTIONS[space]))
    if unknown:
        raise ValueError(f"unknown {space} supernet build options {unknown}; allowed: {list(BUILD_OPTIONS[space])}")
    options = {**DEFAULT_BUILD[space], **build}
    if space == "nb101":
        return NB101Supernet(num_classes, in_shape[0], affine=affine, dropout=dropout, **options)
    if space == "nb201":
        return NB201Supernet(num_classes, in_shape[0], affine=affine, dropout=dropout, **options)
    return DartsSupernet(num_classes, in_shape, affine_ops=affine, dropout=dropout, **options)


def share_edge_norms(supernet: nn.Module) -> nn.Module:
    """Edge-shared BN (``bn_sharing="shared"``): on every edge, the ops whose output BatchNorms
    have the same width and affine setting use one BatchNorm module (statistics and
    scale/shift), the first such op's.  (The study's WSBN, NAO's, is the other direction: an op
    shared by several inputs gets one BatchNorm per input; with one op per edge, as here, that
    is plain per-op BN.)

    Every NB201 and DARTS op that has a BatchNorm ends in it (its last one), and only that one
    is shared, so a path still holds exactly one stand-alone op per edge: the shared module
    appears in the state dict under each op's name and :func:`extract_subnet` copies it as that
    op's own BatchNorm (sub-net == extracted stand-alone network still holds).  Inner BatchNorms
    (the first half of a DARTS ``sep_conv``) stay per op.
    """
    edges = [
        edge
        for cell in supernet.modules()
        if isinstance(cell, (NB201SuperCell, DartsSuperCell))
        for edge in (cell.edges.values() if isinstance(cell.edges, nn.ModuleDict) else cell.edges)
    ]
    if not edges:
        raise ValueError(f"{type(supernet).__name__} has no NB201 or DARTS super-cells whose edge BatchNorms could be shared")
    for edge in edges:
        shared: dict[tuple[int, bool], nn.Module] = {}
        for op in edge.values():
            norms = [(n, m) for n, m in op.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            if not norms:
                continue
            name, norm = norms[-1]
            owner = shared.setdefault((norm.num_features, norm.affine), norm)
            parent, _, child = name.rpartition(".")
            setattr(op.get_submodule(parent), child, owner)
    return supernet


def use_batch_statistics(module: nn.Module) -> nn.Module:
    """Make every BatchNorm of ``module`` normalise with the batch's own statistics, in
    training and at evaluation alike (no running statistics are tracked)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


def tracks_running_stats(module: nn.Module) -> bool:
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in module.modules()
    )


def extract_subnet(supernet: nn.Module, path: Hashable) -> nn.Module:
    """A stand-alone network of ``path`` holding the supernet's weights for that path
    (BatchNorms in the same mode), in the supernet's train/eval mode.  A supernet with
    ``dynamic_channels`` (NB101) gives each tensor's leading slice of the stand-alone shape."""
    net = supernet.standalone(path)  # type: ignore[operator]
    if not tracks_running_stats(supernet):
        use_batch_statistics(net)
    shapes = {k: v.shape for k, v in net.state_dict().items()} if getattr(supernet, "dynamic_channels", False) else {}
    state = {}
    for key, value in supernet.state_dict().items():
        name = supernet.subnet_key(key, path)  # type: ignore[operator]
        if name is not None:
            if name in shapes:
                value = value[tuple(slice(0, size) for size in shapes[name])]
            state[name] = value.clone()
    net.load_state_dict(state)
    return net.train(supernet.training)
