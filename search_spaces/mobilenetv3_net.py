"""The Once-for-All MobileNetV3 network: one sub-network of OFA's MobileNetV3-Large supernet.

Written after the layer recipe of Cai et al. 2020 (``ofa_mbv3.py``, ``MBConvLayer``,
``SEModule``) so that channel and parameter counts agree with OFA's extracted sub-networks:

* stem: 3x3 conv (``stem_stride``, 2 in OFA) - BN - h-swish to 16 channels, then a fixed
  MBConv block (expand 1, kernel 3, ReLU) to 16 channels with an identity shortcut;
* five searched stages with 24, 40, 80, 112, 160 channels, strides 2, 2, 2, 1, 2,
  activations ReLU, ReLU, h-swish, h-swish, h-swish and squeeze-excitation in the 40, 112
  and 160 channel stages; only the first block of a stage is strided;
* an MBConv block is 1x1 expand conv - BN - act (absent when the ratio is 1), kxk depthwise
  conv - BN - act, optional SE, 1x1 projection conv - BN (no activation), plus ``x`` when
  it is stride 1 and keeps the channel count; hidden width ``make_divisible(c_in * e, 8)``;
* head: 1x1 conv - BN - h-swish to 960, global average pool, 1x1 "feature mix" conv
  (no bias, no BN) - h-swish to 1280, dropout, linear classifier.

Every width (960 and 1280 included) is ``make_divisible(base * width, 8)``.  Convs use
``same`` padding (``k // 2``), so a stride-2 layer maps a 1x1 map to 1x1: any input of at
least one pixel works, and small images (CIFAR, 8x8 digits) keep more resolution with
``stem_stride=1``.  Activations are modules (``nn.ReLU``, ``nn.Hardswish``,
``nn.Hardsigmoid``), so :func:`raynas.graph.trace` sees every operator.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from search_spaces.vocabulary import (
    CHANNEL_DIVISOR,
    FEATURE_MIX_WIDTH,
    FINAL_EXPAND_WIDTH,
    FIRST_BLOCK_WIDTH,
    SE_REDUCTION,
    STAGE_ACTS,
    STAGE_SE,
    STAGE_STRIDES,
    STAGE_WIDTHS,
    STEM_WIDTH,
)  # fmt: skip

#: per stage, the ``(kernel, expand)`` of each active block in order
StageBlocks = Sequence[Sequence[tuple[int, int]]]


def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), rounded
    up once more when that falls more than 10% below ``value`` (the MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "h_swish":
        return nn.Hardswish()
    raise ValueError(f"unknown activation {name!r}; allowed: ['relu', 'h_swish']")


class ConvBNAct(nn.Sequential):
    """Conv (no bias, ``same`` padding) - BN - optional activation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = None):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    r"""Channel gate :math:`x \cdot \mathrm{hsigmoid}(W_2\,\mathrm{relu}(W_1\,\mathrm{avg}(x) + b_1) + b_2)`
    with ``make_divisible(channels // 4)`` hidden units (1x1 convs with bias)."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = make_divisible(channels // SE_REDUCTION)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual block: expand 1x1, depthwise kxk, optional SE, linear projection 1x1."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, act: str, se: bool):
        super().__init__()
        hidden = make_divisible(round(c_in * expand))
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(c_in, hidden, 1, act=act))
        else:
            hidden = c_in
        layers.append(ConvBNAct(hidden, hidden, kernel, stride=stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(ConvBNAct(hidden, c_out, 1))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class OFAMobileNetV3(nn.Module):
    """A stand-alone OFA MobileNetV3 sub-network (see the module docstring for the layout).

    Args:
        stages: per searched stage (5), the ``(kernel, expand)`` pair of each active block.
        num_classes: classifier outputs.
        in_channels: image channels.
        width: width multiplier (OFA ships 1.0 and 1.2).
        stem_stride: stride of the first conv (2 in OFA; 1 keeps 4x more pixels for small images).
        dropout: dropout before the classifier (OFA trains with 0.1).
    """

    def __init__(
        self,
        stages: StageBlocks,
        num_classes: int = 1000,
        in_channels: int = 3,
        width: float = 1.0,
        stem_stride: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        if len(stages) != len(STAGE_WIDTHS):
            raise ValueError(f"stages: need {len(STAGE_WIDTHS)} stages of (kernel, expand) blocks, got {len(stages)}")
        stem = make_divisible(STEM_WIDTH * width)
        first = make_divisible(FIRST_BLOCK_WIDTH * width)
        self.stem = ConvBNAct(in_channels, stem, 3, stride=stem_stride, act="h_swish")
        blocks: list[nn.Module] = [MBConv(stem, first, 3, 1, 1, "relu", False)]
        c_in = first
        for blocks_of_stage, base, stride, act, se in zip(stages, STAGE_WIDTHS, STAGE_STRIDES, STAGE_ACTS, STAGE_SE):
            c_out = make_divisible(base * width)
            for b, (kernel, expand) in enumerate(blocks_of_stage):
                blocks.append(MBConv(c_in, c_out, kernel, stride if b == 0 else 1, expand, act, se))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        final = make_divisible(FINAL_EXPAND_WIDTH * width)
        mix = make_divisible(FEATURE_MIX_WIDTH * width)
        self.final_expand = ConvBNAct(c_in, final, 1, act="h_swish")
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(nn.Conv2d(final, mix, 1, bias=False), nn.Hardswish())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(mix, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pooling(self.final_expand(self.blocks(self.stem(x))))
        x = torch.flatten(self.feature_mix(x), 1)
        return self.classifier(self.dropout(x))
