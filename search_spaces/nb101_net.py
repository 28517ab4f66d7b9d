"""The NAS-Bench-101 network, written after the official TensorFlow builder
(``nasbench/lib/model_builder.py`` and ``base_ops.py``) so that shapes, channel counts and
parameter counts agree with the benchmark.

* stem: 3x3 conv-BN-ReLU to ``stem_channels``;
* ``num_stacks`` stacks of ``num_modules_per_stack`` cells; between stacks a 2x2/2 max-pool
  (TF ``same`` padding, i.e. ``ceil_mode``) and the channel count doubles;
* inside a cell every vertex gets its channel count from :func:`vertex_channels`; the cell
  input reaches a vertex through a 1x1 conv-BN-ReLU projection, other vertices feed it
  directly (truncated to its channels) and the inputs are summed; the vertices feeding the
  output are concatenated and a projection of the cell input is added when the input->output
  edge exists;
* global average pool and a dense classifier with bias.

Convolutions have no bias, batch norm is affine with TF's decay 0.997 and epsilon 1e-5.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from search_spaces.vocabulary import NB101_OPS as OPS

_BN_MOMENTUM = 1.0 - 0.997  # TF's moving-average decay, in PyTorch's convention
_BN_EPS = 1e-5
_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to +-2 (TF's variance scaling)

Matrix = Sequence[Sequence[int]]


class ConvBnRelu(nn.Sequential):
    """Conv (no bias, ``same`` padding) -> BN -> ReLU, the only conv block NB101 uses."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=_BN_EPS, momentum=_BN_MOMENTUM),
            nn.ReLU(),
        )


def make_op(name: str, channels: int) -> nn.Module:
    """One vertex operation on ``channels`` channels (input and output channels are equal)."""
    if name == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB101 op {name!r}; allowed ops are {list(OPS)}")


def vertex_channels(in_channels: int, out_channels: int, matrix: Matrix) -> list[int]:
    """Channels of every vertex of a pruned cell (NB101's ``compute_vertex_channels``).

    The output channels are split evenly over the vertices feeding the output (the first
    ones get one extra channel when the split is uneven); every other interior vertex gets
    the largest channel count among its successors, so channels never grow along an edge.
    """
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = in_channels, out_channels
    if n == 2:
        return channels
    feeding = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    base, extra = divmod(out_channels, len(feeding))
    for i, v in enumerate(feeding):
        channels[v] = base + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[d] for d in range(v + 1, n - 1) if matrix[v][d])
    return channels


class NB101Cell(nn.Module):
    """One module of a stack, for a **pruned** cell (every vertex on an input->output path)."""

    def __init__(self, matrix: Matrix, ops: Sequence[str], in_channels: int, out_channels: int):
        super().__init__()
        n = len(matrix)
        self.n = n
        self.matrix = [list(map(int, row)) for row in matrix]
        self.channels = vertex_channels(in_channels, out_channels, matrix)
        self.vertex_ops = nn.ModuleDict({str(t): make_op(ops[t], self.channels[t]) for t in range(1, n - 1)})
        self.projections = nn.ModuleDict(
            {str(t): ConvBnRelu(in_channels, self.channels[t], 1) for t in range(1, n) if matrix[0][t]}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_cell(x, self.matrix, self.channels, self._vertex, self._project)

    def _vertex(self, t: int, h: torch.Tensor) -> torch.Tensor:
        return self.vertex_ops[str(t)](h)

    def _project(self, t: int, x: torch.Tensor) -> torch.Tensor:
        return self.projections[str(t)](x)


def run_cell(
    x: torch.Tensor,
    matrix: Matrix,
    channels: Sequence[int],
    vertex: Callable[[int, torch.Tensor], torch.Tensor],
    project: Callable[[int, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The dataflow of a pruned cell, given how to run vertex ``t``'s op (``vertex(t, h)``)
    and the projection of the cell input to vertex ``t``'s channels (``project(t, x)``).

    One home for the summation and concatenation order, so the weight-sharing supernet
    (which runs sliced ops through the same function) computes exactly what the stand-alone
    cell computes."""
    n = len(matrix)
    tensors = [x]
    concat = []
    for t in range(1, n - 1):
        inputs = [tensors[s][:, : channels[t]] for s in range(1, t) if matrix[s][t]]
        if matrix[0][t]:
            inputs.append(project(t, x))
        total = inputs[0]
        for extra in inputs[1:]:
            total = total + extra
        tensors.append(vertex(t, total))
        if matrix[t][n - 1]:
            concat.append(tensors[t])
    if not concat:
        return project(n - 1, x)
    out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
    if matrix[0][n - 1]:
        out = out + project(n - 1, x)
    return out


class NB101Network(nn.Module):
    """Stem, ``num_stacks`` stacks of cells with max-pool downsampling, average pool, dense."""

    def __init__(
        self,
        matrix: Matrix,
        ops: Sequence[str],
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int = 128,
        num_stacks: int = 3,
        num_modules_per_stack: int = 3,
    ):
        super().__init__()
        self.stem = ConvBnRelu(in_channels, stem_channels, 3)
        layers: list[nn.Module] = []
        channels, width = stem_channels, stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                width *= 2
            for _ in range(num_modules_per_stack):
                layers.append(self.make_cell(matrix, ops, channels, width))
                channels = width
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def make_cell(self, matrix: Matrix, ops: Sequence[str], in_channels: int, out_channels: int) -> nn.Module:
        """One cell of a stack; the weight-sharing supernet overrides this hook."""
        return NB101Cell(matrix, ops, in_channels, out_channels)

    def reset_parameters(self) -> None:
        """TF's initialisers: variance scaling (truncated normal, fan-in) for convs,
        Glorot uniform for the dense kernel, zero biases, unit BN scale."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                std = math.sqrt(1.0 / fan_in) / _TRUNC_STD
                nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))
