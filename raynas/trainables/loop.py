"""The one SGD loop every trainable runs: stand-alone, self-supervised, sampled and supernet.

A trainable differs from another in what a batch is and what its loss is; the optimiser, the
step (zero, forward in the chosen precision, backward with fp16's gradient scaling, clip,
update) and the check that the loss stayed finite are the same, so they are written once here.
On a GPU the losses are summed on the device and checked once per epoch: reading each batch's
loss back to the host would wait for the GPU at every step.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, TypeVar

import torch
from torch import nn

from raynas.devices import autocast
from raynas.trainables.settings import TrainerSettings

Batch = TypeVar("Batch")


def sgd(model: nn.Module, settings: TrainerSettings) -> torch.optim.SGD:
    """SGD with the settings' (Nesterov) momentum and weight decay."""
    s = settings
    return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay)


def lr_schedule(optimizer: torch.optim.Optimizer, settings: TrainerSettings) -> torch.optim.lr_scheduler.LRScheduler:
    """The settings' schedule, stepped once per epoch: cosine to 0 over ``epochs``, or step
    decay by ``lr_gamma`` every ``lr_step`` epochs (NAGO's trainer)."""
    if settings.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=settings.lr_step, gamma=settings.lr_gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    batch_loss: Callable[[Batch], tuple[torch.Tensor, int]],
    grad_clip: float,
    where: Callable[[int | None], str],
    device: torch.device = torch.device("cpu"),
    precision: str = "32",
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """One epoch of SGD over ``batches``; the mean loss per item.

    Args:
        batch_loss: a batch -> (its mean loss, how many items it averages); it runs under
            autocast for ``precision`` "bf16" / "fp16".
        grad_clip: clip the gradient norm to this (0: no clipping).
        where: batch index (None: some batch of the epoch) -> what a non-finite loss message
            says about where it happened (epoch, batch, architecture, learning rate).
        scaler: fp16's gradient scaler (:func:`raynas.devices.grad_scaler`).
    """
    model.train()
    each_batch = device.type == "cpu"  # reading a loss back is free on the CPU
    total: float | torch.Tensor = 0.0 if each_batch else torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    for index, batch in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss, count = batch_loss(batch)
        if each_batch and not math.isfinite(value := loss.item()):
            raise FloatingPointError(f"non-finite training loss ({value}) at {where(index)}; lower lr or keep grad_clip > 0")
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        total += value * count if each_batch else loss.detach().double() * count
        seen += count
    mean = float(total) / seen
    if not math.isfinite(mean):
        raise FloatingPointError(f"non-finite training loss ({mean}) at {where(None)}; lower lr or keep grad_clip > 0")
    return mean
