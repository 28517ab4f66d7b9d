"""The one SGD loop every trainable runs: stand-alone, self-supervised, sampled and supernet.

A trainable differs from another in what a batch is and what its loss is; the optimiser, the
step (zero, backward, clip, update) and the check that the loss stayed finite are the same,
so they are written once here.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, TypeVar

import torch
from torch import nn

from raynas.trainables.settings import TrainerSettings

Batch = TypeVar("Batch")


def sgd(model: nn.Module, settings: TrainerSettings) -> torch.optim.SGD:
    """SGD with the settings' (Nesterov) momentum and weight decay."""
    s = settings
    return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    batch_loss: Callable[[Batch], tuple[torch.Tensor, int]],
    grad_clip: float,
    where: Callable[[int], str],
) -> float:
    """One epoch of SGD over ``batches``; the mean loss per item.

    Args:
        batch_loss: a batch -> (its mean loss, how many items it averages).
        grad_clip: clip the gradient norm to this (0: no clipping).
        where: batch index -> what a non-finite loss message says about where it happened
            (epoch, batch, architecture, learning rate).
    """
    model.train()
    total, seen = 0.0, 0
    for index, batch in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss, count = batch_loss(batch)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite training loss ({value}) at {where(index)}; lower lr or keep grad_clip > 0")
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += value * count
        seen += count
    return total / seen
