"""DARTS cell operations and the DARTS evaluation network ("NetworkCIFAR").

The ops live here, in one place, so the weight-sharing supernet reuses exactly the modules
that stand-alone networks train.  Layers follow the DARTS code (Liu et al. 2019,
``operations.py`` / ``model.py``): ReLU-Conv-BN with no conv bias, separable convs applied
twice, dilated separable convs, 3x3 pooling that leaves padded zeros out of the average.

Two switches give the *search-model* flavour of the cell ops that NASLib's NAS-Bench-301
graph uses: ``affine_ops=False`` (cell-op BatchNorms without learnable scale/shift) and
``pool_bn=True`` (a non-affine BatchNorm after each pooling).  Cell preprocessing, stem
and classifier are the same in both flavours.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.vocabulary import DARTS_OPS as OPS

#: channels of a cell's output relative to its width: the concat of its 4 intermediate nodes
MULTIPLIER = 4

CellSpec = Sequence[tuple[str, int]]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise (optionally dilated) conv, pointwise conv, BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool = True
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """DARTS' separable conv: two undilated :class:`DilConv` blocks, only the first strided."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs (skip_connect at stride 2).

    Odd sizes are padded on the bottom/right before the offset conv so both halves agree
    (DARTS assumes even sizes; for even sizes this is exactly DARTS' op).
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, x.shape[3] % 2, 0, x.shape[2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def make_op(name: str, channels: int, stride: int, affine: bool = True, pool_bn: bool = False) -> nn.Module:
    """One DARTS cell op on ``channels`` channels (stride 2 on reduction-cell inputs)."""
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool: nn.Module = (
            nn.MaxPool2d(3, stride=stride, padding=1)
            if name == "max_pool_3x3"
            else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        )
        return nn.Sequential(pool, nn.BatchNorm2d(channels, affine=False)) if pool_bn else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        kernel = int(name[-1])
        return SepConv(channels, channels, kernel, stride, kernel // 2, affine)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        kernel = int(name[-1])
        return DilConv(channels, channels, kernel, stride, kernel - 1, 2, affine)
    raise ValueError(f"unknown DARTS op {name!r}; allowed ops are {list(OPS)}")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS' regulariser)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """A DARTS cell: node k (k=0..3) sums two ops over earlier states; the output concatenates
    the four nodes.  State 0/1 are the preprocessed outputs of the cells two back / one back.

    ``ops`` holds 8 ``(op, input)`` pairs in genotype order (entries 2k, 2k+1 feed node k).
    """

    def __init__(
        self,
        ops: CellSpec,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        affine_ops: bool = True,
        pool_bn: bool = False,
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, channels)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1)
        )
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1)
        self.inputs = [index for _, index in ops]
        self.ops = nn.ModuleList(
            make_op(name, channels, 2 if reduction and index < 2 else 1, affine_ops, pool_bn)
            for name, index in ops
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(self.ops) // 2):
            total = None
            for j in (2 * k, 2 * k + 1):
                op = self.ops[j]
                h = op(states[self.inputs[j]])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat(states[-MULTIPLIER:], dim=1)  # the last four nodes (all of DARTS' four)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier on the 2nd reduction cell's output (8x8 for CIFAR).

    Maps smaller than 8 pixels are pooled to 2x2 adaptively instead of DARTS' 5x5/stride-3
    pool, and larger ones are averaged after the 2x2 conv, so any image size works; the
    parameters are DARTS' in every case.
    """

    def __init__(self, channels: int, num_classes: int, feature_size: int):
        super().__init__()
        pool = (
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
            if feature_size >= 8
            else nn.AdaptiveAvgPool2d(2)
        )
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            pool,
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class NetworkCIFAR(nn.Module):
    """DARTS evaluation network: stem, ``layers`` cells with reduction cells at ``layers//3``
    and ``2*layers//3`` (which double the width), global average pool, linear classifier.

    ``drop_path_prob`` is an attribute so a training loop can anneal it per epoch, as DARTS
    does.  With ``auxiliary=True`` a training-mode forward also stores the auxiliary head's
    logits in ``aux_logits``; ``forward`` itself always returns the main logits only.
    """

    def __init__(
        self,
        normal: CellSpec,
        reduce: CellSpec,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        C: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
        affine_ops: bool = True,
        pool_bn: bool = False,
    ):
        super().__init__()
        if C < 1 or layers < 1 or stem_multiplier < 1:
            raise ValueError(
                f"C, layers and stem_multiplier must be >= 1, got C={C}, layers={layers}, "
                f"stem_multiplier={stem_multiplier}"
            )
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must be in [0, 1), got {drop_path_prob}")
        self.drop_path_prob = drop_path_prob
        c_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_shape[0], c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        reductions = (layers // 3, 2 * layers // 3)
        c_prev_prev, c_prev, c_curr = c_stem, c_stem, C
        size = min(in_shape[1:])
        self.cells = nn.ModuleList()
        self.aux_index = reductions[1]
        self.auxiliary_head: AuxiliaryHead | None = None
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
                size = math.ceil(size / 2)
            self.cells.append(
                self.make_cell(
                    reduce if reduction else normal,
                    c_prev_prev, c_prev, c_curr, reduction, reduction_prev, affine_ops, pool_bn,
                )
            )
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, MULTIPLIER * c_curr
            if auxiliary and i == self.aux_index:
                self.auxiliary_head = AuxiliaryHead(c_prev, num_classes, size)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.aux_logits: torch.Tensor | None = None

    def make_cell(
        self,
        ops: CellSpec,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        affine_ops: bool,
        pool_bn: bool,
    ) -> nn.Module:
        """One searched cell (the weight-sharing supernet overrides this to hold every op)."""
        return Cell(ops, c_prev_prev, c_prev, channels, reduction, reduction_prev, affine_ops, pool_bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        self.aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))
