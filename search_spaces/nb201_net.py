"""The NAS-Bench-201 CIFAR network ("TinyNetwork": C=16, N=5) and its cell operations.

Written to match the published model so parameter counts agree with the benchmark tables:
ReLU-Conv-BN convolutions with affine BN and no conv bias, 3x3 average pooling without
padded zeros in the average, residual basic blocks between stages.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from search_spaces.vocabulary import NB201_EDGES, NB201_OPS as OPS


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` op: contributes nothing (zeros of the right shape)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """One NB201 cell operation on ``channels`` channels (stride 1 inside cells)."""
    factories: dict[str, Callable[[], nn.Module]] = {
        "none": lambda: Zero(),
        "skip_connect": nn.Identity,
        "nor_conv_1x1": lambda: ReLUConvBN(channels, channels, 1, affine=affine),
        "nor_conv_3x3": lambda: ReLUConvBN(channels, channels, 3, affine=affine),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    }
    if name not in factories:
        raise ValueError(f"unknown NB201 op {name!r}; allowed ops are {list(OPS)}")
    return factories[name]()


class NB201Cell(nn.Module):
    """Cell with nodes 0..3: node j sums op(i -> j)(node i) over i < j; node 3 is the output.

    ``ops`` lists the six edge ops in arch-string order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
    """

    EDGES = NB201_EDGES

    def __init__(self, ops: Sequence[str], channels: int, affine: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels, affine) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for j in range(1, 4):
            total = self.edges[k](nodes[0])
            for i in range(1, j):
                total = total + self.edges[k + i](nodes[i])
            k += j
            nodes.append(total)
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """Stride-2 residual block between stages (fixed, not searched)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """Stem, three stages of ``N`` cells (C, 2C, 4C channels), residual reductions, classifier.

    ``affine`` switches the cell ops' BatchNorm scale/shift; cells come from ``make_cell``,
    which the weight-sharing supernet overrides so both networks share this skeleton.
    """

    def __init__(
        self,
        ops: Sequence[str],
        num_classes: int = 10,
        in_channels: int = 3,
        C: int = 16,
        N: int = 5,
        affine: bool = True,
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(width // 2, width))
            layers.extend(self.make_cell(ops, width, affine) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def make_cell(self, ops: Sequence[str], channels: int, affine: bool) -> nn.Module:
        """One searched cell of ``channels`` channels."""
        return NB201Cell(ops, channels, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))
