"""Stand-alone training of one architecture per trial (Tune class API).

Each ``step`` is one epoch: SGD with (Nesterov) momentum, cosine learning rate, weight
decay, gradient clipping, augmentation; then validation.  Checkpoints hold the model,
optimiser, scheduler, epoch and every RNG state, so a restored trial continues exactly
where it stopped.  ``reset_config`` rebuilds everything, so ``reuse_actors=True`` works.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Iterable

import torch
from torch import nn

from raynas.data import ImageDataset, load_dataset
from raynas.trainable_base import ReconfigurableTrainable
from raynas.trainables.settings import TrainerSettings, decode_trial, use_allotted_threads

_DATASETS: dict[str, ImageDataset] = {}


def dataset_for(spec: str, data: ImageDataset | None) -> ImageDataset:
    """The shared dataset if Tune passed one (``tune.with_parameters``), else load once per process."""
    if data is not None:
        return data
    if spec not in _DATASETS:
        _DATASETS[spec] = load_dataset(spec)
    return _DATASETS[spec]


def count_flops(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulate count of one forward pass, from the traced computation graph."""
    from raynas.graph import trace

    return int(trace(model, (1, *in_shape)).flops)


@torch.no_grad()
def accuracy(model: nn.Module, data: ImageDataset, split: str, batch_size: int = 256) -> float:
    """Top-1 accuracy in percent on ``split``."""
    model.eval()
    correct = 0
    for x, y in data.batches(split, batch_size):
        correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / data.size(split)


class StandaloneTrainable(ReconfigurableTrainable):
    """Trains ``space.decode(config)`` from scratch; reports ``val_acc`` every epoch.

    Use ``tune.with_parameters(StandaloneTrainable, data=dataset)`` to share one dataset
    through the object store instead of loading it in every trial.

    Trainables that train one architecture per trial with another objective subclass it
    and override the hooks ``settings_type``, ``_build_model``, ``_cost_model``,
    ``_train_batches``, ``_batch_loss``, ``_epoch_metrics`` and ``_final_metrics``; set-up,
    optimiser, schedule, checkpoints, ``step`` and ``reset_config`` stay shared.
    """

    settings_type: type[TrainerSettings] = TrainerSettings

    def setup(self, config: dict[str, Any], data: ImageDataset | None = None) -> None:
        use_allotted_threads()
        self._shared_data = data
        self._configure(config)

    def _configure(self, config: dict[str, Any]) -> None:
        self.settings, self.space, self.arch = decode_trial(config, self.settings_type)
        s = self.settings
        self.data = dataset_for(s.dataset, self._shared_data)
        torch.manual_seed(s.seed)
        self.generator = torch.Generator().manual_seed(s.seed)
        self.model = self._build_model()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=s.epochs)
        self.epoch = 0
        counted = self._cost_model()
        self.params = sum(p.numel() for p in counted.parameters())
        self.flops = count_flops(counted, self.data.in_shape)

    def _build_model(self) -> nn.Module:
        """The module the optimiser trains (and checkpoints hold)."""
        s = self.settings
        return self.space.build(self.arch, num_classes=self.data.num_classes, in_shape=self.data.in_shape, **s.build)

    def _cost_model(self) -> nn.Module:
        """The network whose ``params`` and ``flops`` are reported."""
        return self.model

    def step(self) -> dict[str, Any]:
        start = time.perf_counter()
        loss = self._train_epoch()
        self.epoch += 1
        result: dict[str, Any] = {"epoch": self.epoch, **self._epoch_metrics(loss)}
        result |= {"params": self.params, "flops": self.flops, "arch": str(self.arch), "node_id": self.node_id}
        result["epoch_time_s"] = time.perf_counter() - start
        if self.epoch >= self.settings.epochs:
            result |= self._final_metrics()
            result["done"] = True
        return result

    def _epoch_metrics(self, loss: float) -> dict[str, Any]:
        """What every epoch reports besides epoch, cost and arch (``loss``: the epoch's mean)."""
        return {"train_loss": loss, "val_acc": accuracy(self.model, self.data, "valid")}

    def _final_metrics(self) -> dict[str, Any]:
        """What the last epoch reports in addition."""
        return {"test_acc": accuracy(self.model, self.data, "test")}

    def _train_batches(self) -> Iterable[Any]:
        """One epoch of training batches."""
        s = self.settings
        return self.data.batches("train", s.batch_size, True, s.augment, self.generator, s.data_portion)

    def _batch_loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        """The loss of one batch from :meth:`_train_batches` and how many images it averages."""
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y), len(y)

    def _train_epoch(self) -> float:
        """One epoch of SGD; the mean training loss per image."""
        s = self.settings
        self.model.train()
        total, seen = 0.0, 0
        for index, batch in enumerate(self._train_batches()):
            self.optimizer.zero_grad(set_to_none=True)
            loss, count = self._batch_loss(batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"non-finite training loss ({loss.item()}) at epoch {self.epoch + 1}, batch {index} for "
                    f"{self.space.name} arch {self.arch} with lr={s.lr}; lower lr or keep grad_clip > 0"
                )
            loss.backward()
            if s.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
            self.optimizer.step()
            total += loss.item() * count
            seen += count
        self.scheduler.step()
        return total / seen

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch,
                "arch": str(self.arch),
                "torch_rng": torch.get_rng_state(),
                "data_rng": self.generator.get_state(),
            },
            os.path.join(checkpoint_dir, "state.pt"),
        )

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        state = torch.load(os.path.join(str(checkpoint), "state.pt"), weights_only=False)
        if state["arch"] != str(self.arch):
            raise ValueError(f"checkpoint is for arch {state['arch']}, this trial trains {self.arch}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["data_rng"])
