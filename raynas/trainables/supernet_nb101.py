"""The weight-sharing supernet of the NAS-Bench-101 space, with dynamic channels.

An NB101 cell's vertex widths depend on its graph (:func:`~search_spaces.nb101_net.vertex_channels`:
the output width is split over the vertices feeding the output), so one set of weights can
serve every cell only if each op holds the widest weights and a path uses a slice of them
(Yu et al.'s *dynamic channels*).  Every cell of :class:`NB101Supernet` holds

* at each interior vertex position 1..5, one module per op, made by the stand-alone
  network's ``make_op`` at the cell's output width (the widest any vertex can be);
* at each position 1..6 (6 = the output), a 1x1 projection of the cell input to that width.

A path of width ``c`` at a vertex runs the first ``c`` channels: conv weight ``[:c, :c]``
(projections ``[:c, :]``), BatchNorm scale, shift and running statistics ``[:c]``.  One
BatchNorm per op shared by every width (rather than one per width) keeps the stand-alone
network's parameter names, so :func:`~raynas.trainables.supernet_net.extract_subnet` copies
plain slices; shared statistics cost nothing under the default ``bn_mode="recalibrate"``,
which re-estimates them for each path before it is scored.

**Evaluation mapping.**  A path is an architecture's spec; it is pruned first (NB101's
rule), and vertex ``i`` of the pruned cell runs on supernet position ``i``, its output on
position 6.  Vertices of a pruned spec are in topological order, so a cell of ``n``
vertices uses the first ``n - 2`` positions: the low positions are shared by every cell
and train most, and a vertex keeps its position when vertices are added after it.  The
mapping follows the spec's vertex order, so two isomorphic specs written in different
orders (same key) may run on different positions.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.darts_net import drop_path
from search_spaces.nb101 import NUM_VERTICES, Spec, prune
from search_spaces.nb101_net import ConvBnRelu, NB101Network, make_op, run_cell, vertex_channels
from search_spaces.vocabulary import NB101_OPS

#: the supernet position of the cell output
OUTPUT = NUM_VERTICES - 1


def pruned_path(path: Any) -> Spec:
    """The pruned ``(matrix, ops)`` of an NB101 spec (any vertex count, pruned or not)."""
    matrix, ops = path
    pruned = prune(tuple(tuple(int(b) for b in row) for row in matrix), tuple(ops))
    if pruned is None:
        raise ValueError(f"nb101 path {path!r}: the input does not reach the output")
    return pruned


def supernet_position(t: int, n: int) -> int:
    """Supernet vertex position of vertex ``t`` of an ``n``-vertex pruned cell."""
    return OUTPUT if t == n - 1 else t


def sliced_batch_norm(bn: nn.BatchNorm2d, h: torch.Tensor) -> torch.Tensor:
    """``bn`` on the first ``h.shape[1]`` channels: ``nn.BatchNorm2d.forward`` (momentum or
    cumulative average, running or batch statistics) with parameters and statistics sliced."""
    c = h.shape[1]
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    mean = var = None
    if bn.running_mean is not None and (not bn.training or bn.track_running_stats):
        mean, var = bn.running_mean[:c].clone(), bn.running_var[:c].clone()
    weight = None if bn.weight is None else bn.weight[:c]
    bias = None if bn.bias is None else bn.bias[:c]
    out = F.batch_norm(h, mean, var, weight, bias, bn.training or mean is None, factor, bn.eps)
    if bn.training and mean is not None:
        bn.running_mean[:c] = mean
        bn.running_var[:c] = var
    return out


def sliced_conv_bn_relu(block: ConvBnRelu, x: torch.Tensor, out_channels: int) -> torch.Tensor:
    """``block`` from ``x``'s channels to its first ``out_channels``: the leading block of
    the convolution's weight, then the sliced BatchNorm and ReLU."""
    conv, bn = block[0], block[1]
    weight = conv.weight[:out_channels, : x.shape[1]]
    return F.relu(sliced_batch_norm(bn, F.conv2d(x, weight, None, conv.stride, conv.padding)))


class NB101SuperCell(nn.Module):
    """Every op at every vertex position and a projection to every position, all at the
    cell's output width; ``forward(x, path)`` runs a pruned cell on them, sliced."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.vertex_ops = nn.ModuleDict(
            {str(v): nn.ModuleDict({op: make_op(op, out_channels) for op in NB101_OPS}) for v in range(1, OUTPUT)}
        )
        self.projections = nn.ModuleDict({str(v): ConvBnRelu(in_channels, out_channels, 1) for v in range(1, OUTPUT + 1)})

    def forward(self, x: torch.Tensor, path: Spec, drop_prob: float = 0.0) -> torch.Tensor:
        matrix, ops = path
        n = len(matrix)
        channels = vertex_channels(self.in_channels, self.out_channels, matrix)

        def vertex(t: int, h: torch.Tensor) -> torch.Tensor:
            module = self.vertex_ops[str(t)][ops[t]]
            out = module(h) if isinstance(module, nn.MaxPool2d) else sliced_conv_bn_relu(module, h, h.shape[1])
            return drop_path(out, drop_prob) if self.training and drop_prob > 0 else out

        def project(t: int, x: torch.Tensor) -> torch.Tensor:
            return sliced_conv_bn_relu(self.projections[str(supernet_position(t, n))], x, channels[t])

        return run_cell(x, matrix, channels, vertex, project)


class NB101Supernet(NB101Network):
    """The NB101 network with :class:`NB101SuperCell` cells; ``path`` is an NB101 spec."""

    space = "nb101"
    #: a path's weights are the leading slices of the supernet's (``extract_subnet`` slices them)
    dynamic_channels = True

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int = 128,
        num_stacks: int = 3,
        num_modules_per_stack: int = 3,
        affine: bool = True,
        dropout: float = 0.0,
    ):
        if affine is not True:
            raise ValueError(
                "bn_affine=False is not allowed for the nb101 supernet: the NB101 network's "
                "BatchNorms are always affine (as in the benchmark); allowed values are [True]"
            )
        super().__init__((), (), num_classes, in_channels, stem_channels, num_stacks, num_modules_per_stack)
        self.options = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "stem_channels": stem_channels,
            "num_stacks": num_stacks,
            "num_modules_per_stack": num_modules_per_stack,
        }
        self.dropout = nn.Dropout(dropout)  # no state: the stand-alone network (eval) computes the same

    def make_cell(self, matrix: Any, ops: Sequence[str], in_channels: int, out_channels: int) -> nn.Module:
        return NB101SuperCell(in_channels, out_channels)

    def forward(self, x: torch.Tensor, path: Any, drop_prob: float = 0.0) -> torch.Tensor:  # type: ignore[override]
        cell = pruned_path(path)
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, cell, drop_prob) if isinstance(layer, NB101SuperCell) else layer(x)
        return self.head(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last cell's output: the stand-alone network's, with global dropout."""
        return self.classifier(self.dropout(x.mean(dim=(2, 3))))

    def standalone(self, path: Any) -> nn.Module:
        """A fresh stand-alone network of ``path`` with this supernet's shape."""
        matrix, ops = pruned_path(path)
        return NB101Network(matrix, ops, **self.options)

    def subnet_key(self, key: str, path: Any) -> str | None:
        """Stand-alone name of supernet parameter ``key`` on ``path``; None when off the path.
        The value is the leading slice of the stand-alone parameter's shape."""
        parts = key.split(".")
        if len(parts) < 4 or parts[0] != "cells" or parts[2] not in ("vertex_ops", "projections"):
            return key
        matrix, ops = pruned_path(path)
        n, v = len(matrix), int(parts[3])
        t = n - 1 if v == OUTPUT else v
        if parts[2] == "vertex_ops":
            if t >= n - 1 or parts[4] != ops[t]:
                return None
            del parts[4]
        elif (v != OUTPUT and t >= n - 1) or not matrix[0][t]:
            return None
        parts[3] = str(t)
        return ".".join(parts)


def fair_paths(bases: Sequence[Any], rng: np.random.Generator) -> list[Spec]:
    """FairNAS over NB101 vertices: the graphs of ``bases`` (one path each, drawn uniformly)
    are kept and the op of every vertex position is the t-th of a per-position shuffle of
    the ops in path t, so within a group of ``len(NB101_OPS)`` paths each op of each position
    trains at most once (exactly once where every graph of the group has that vertex)."""
    shuffles = [rng.permutation(NB101_OPS) for _ in range(1, OUTPUT)]
    paths = []
    for t, base in enumerate(bases):
        matrix, _ = pruned_path(base)
        ops = tuple(str(shuffles[v - 1][t]) for v in range(1, len(matrix) - 1))
        paths.append((matrix, ("input", *ops, "output")))
    return paths
