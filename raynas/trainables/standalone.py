"""Stand-alone training of one architecture per trial (Tune class API).

:class:`ArchTraining` is the training of one architecture from scratch, without Tune: each
``step`` is one epoch of SGD with (Nesterov) momentum, cosine learning rate, weight decay,
gradient clipping and augmentation, then validation.  Its state (model, optimiser,
scheduler, epoch and every RNG) round-trips through ``state_dict``, so a restored trial
continues exactly where it stopped.  :class:`StandaloneTrainable` is the Tune trainable of
one such training; ``reset_config`` starts a new one, so ``reuse_actors=True`` works.
"""
from __future__ import annotations

import os
import time
from typing import Any, Iterable

import torch
from torch import nn

from raynas.data import ImageDataset, as_dataset
from raynas.images import cutout, cutout_pixels
from raynas.latency import measure_latency
from raynas.devices import autocast, check_precision, grad_scaler, trial_device
from raynas.trainables.base import ReconfigurableTrainable
from raynas.trainables.loop import lr_schedule, sgd, train_epoch
from raynas.trainables.settings import TrainerSettings, decode_trial
from search_spaces import SearchSpace

def count_flops(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulate count of one forward pass, from the traced computation graph."""
    from raynas.graph import trace

    return int(trace(model, (1, *in_shape)).flops)


@torch.no_grad()
def accuracy(model: nn.Module, data: ImageDataset, split: str, batch_size: int = 256) -> float:
    """Top-1 accuracy in percent on ``split`` (counted on the data's device, read back once)."""
    model.eval()
    correct = 0
    for x, y in data.batches(split, batch_size):
        correct = correct + (model(x).argmax(1) == y).sum()
    return 100.0 * int(correct) / data.size(split)


class ArchTraining:
    """Trains ``space.decode(config)`` from scratch, one epoch per :meth:`step`.

    Trainings of one architecture with another objective subclass it and override
    ``settings_type``, :meth:`build_model`, :meth:`cost_model`, :meth:`train_batches`,
    :meth:`batch_loss`, :meth:`epoch_metrics` and :meth:`final_metrics`; set-up, optimiser,
    schedule, the epoch loop and the state stay shared.

    Args:
        config: the trial's flat config (the space's keys and trainer keys).
        data: the dataset shared through Tune's object store, or None to load
            ``config["dataset"]`` (once per process).
        space: the search space object, or None for the one ``config["space"]`` names.
    """

    settings_type: type[TrainerSettings] = TrainerSettings

    def __init__(self, config: dict[str, Any], data: ImageDataset | None = None, space: SearchSpace | None = None):
        self.settings, self.space, self.arch = decode_trial(config, self.settings_type, space)
        s = self.settings
        self.device = trial_device(s.device)
        self.precision = check_precision(s.precision, self.device)
        self.memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
        self.data = as_dataset(s.dataset if data is None else data).to(self.device)
        self.cutout = cutout_pixels(s.cutout, self.data.in_shape) if s.cutout else 0
        torch.manual_seed(s.seed)
        self.generator = torch.Generator(self.device).manual_seed(s.seed)
        self.model = self.build_model()
        counted = self.cost_model()  # traced on the CPU, before the model moves
        self.params = sum(p.numel() for p in counted.parameters())
        self.flops = count_flops(counted, self.data.in_shape)
        self.model.to(self.device, memory_format=self.memory_format)
        self._check_regularisers()
        self.latency_ms = self.measure_latency()
        self.best: dict[str, Any] | None = None  # with keep_best: the best val_acc epoch's weights
        self.optimizer = sgd(self.model, s)
        self.scaler = grad_scaler(self.device, self.precision)
        self.scheduler = lr_schedule(self.optimizer, s)
        self.epoch = 0

    # ------------------------------------------------------------------ hooks
    def build_model(self) -> nn.Module:
        """The module the optimiser trains (and checkpoints hold)."""
        s = self.settings
        return self.space.build(self.arch, num_classes=self.data.num_classes, in_shape=self.data.in_shape, **s.build)

    def cost_model(self) -> nn.Module:
        """The network whose ``params`` and ``flops`` are reported."""
        return self.model

    def train_batches(self) -> Iterable[Any]:
        """One epoch of training batches (with cutout when the settings ask for it)."""
        s = self.settings
        batches = self.data.batches("train", s.batch_size, True, s.augment, self.generator, s.data_portion)
        if self.cutout:
            return ((cutout(x, self.cutout, self.generator), y) for x, y in batches)
        return batches

    def batch_loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        """The loss of one batch from :meth:`train_batches` and how many images it averages
        (plus the auxiliary head's, weighted, when the settings ask for it)."""
        x, y = batch
        loss = nn.functional.cross_entropy(self.model(x.contiguous(memory_format=self.memory_format)), y)
        if self.settings.auxiliary_weight > 0:
            loss = loss + self.settings.auxiliary_weight * nn.functional.cross_entropy(self.model.aux_logits, y)
        return loss, len(y)

    def measure_latency(self) -> float | None:
        """Median inference latency (ms) of the network on the trial's device, measured once."""
        s = self.settings
        if not s.latency_runs:
            return None
        return measure_latency(self.cost_model(), self.data.in_shape, s.latency_batch, runs=s.latency_runs).median_ms

    def _check_regularisers(self) -> None:
        """Drop-path and an auxiliary head need a network that has them (DARTS' does)."""
        s, name = self.settings, self.space.name
        if s.drop_path > 0 and not hasattr(self.model, "drop_path_prob"):
            raise ValueError(f"drop_path={s.drop_path}: the {name} network has no drop-path (the DARTS spaces have)")
        if s.auxiliary_weight > 0 and getattr(self.model, "auxiliary_head", None) is None:
            raise ValueError(f"auxiliary_weight={s.auxiliary_weight}: the {name} network has no auxiliary head "
                             '(the DARTS spaces have one with build {"auxiliary": true})')  # fmt: skip

    def epoch_metrics(self, loss: float) -> dict[str, Any]:
        """What every epoch reports besides epoch, cost and arch (``loss``: the epoch's mean)."""
        return {"train_loss": loss, "val_acc": self.accuracy("valid")}

    def final_metrics(self) -> dict[str, Any]:
        """What the last epoch reports in addition."""
        return {"test_acc": self.accuracy("test")}

    def accuracy(self, split: str) -> float:
        """Top-1 accuracy (percent) on ``split``, in the training's precision."""
        with autocast(self.device, self.precision):
            return accuracy(self.model, self.data, split)

    # ------------------------------------------------------------------ training
    def train_one_epoch(self) -> float:
        """One epoch of SGD (no evaluation); the mean training loss."""
        s = self.settings

        def where(batch: int | None) -> str:
            at = f"epoch {self.epoch + 1}" + (f", batch {batch}" if batch is not None else "")
            return f"{at} for {self.space.name} arch {self.arch} with lr={s.lr}"

        if s.drop_path > 0:  # DARTS' schedule: rises linearly from 0 over the epochs
            self.model.drop_path_prob = s.drop_path * self.epoch / s.epochs
        loss = train_epoch(self.model, self.optimizer, self.train_batches(), self.batch_loss, s.grad_clip, where,
                           self.device, self.precision, self.scaler)  # fmt: skip
        self.scheduler.step()
        self.epoch += 1
        return loss

    def step(self) -> dict[str, Any]:
        """Train one epoch; its metrics, with ``done`` after the last one."""
        start = time.perf_counter()
        loss = self.train_one_epoch()
        result: dict[str, Any] = {"epoch": self.epoch, **self.epoch_metrics(loss)}
        result |= {"params": self.params, "flops": self.flops, "arch": str(self.arch), "device": str(self.device)}
        if self.latency_ms is not None:
            result["latency_ms"] = self.latency_ms
        result["epoch_time_s"] = time.perf_counter() - start
        if self.settings.keep_best and "val_acc" in result and (self.best is None or result["val_acc"] > self.best["val_acc"]):
            weights = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self.best = {"model": weights, "epoch": self.epoch, "val_acc": result["val_acc"], "arch": str(self.arch)}
        if self.best is not None:  # what best.pt holds, beside the last epoch's val_acc
            result |= {"best_val_acc": self.best["val_acc"], "best_epoch": self.best["epoch"]}
        if self.epoch >= self.settings.epochs:
            result |= self.final_metrics()
            result["done"] = True
        return result

    def state_dict(self) -> dict[str, Any]:
        """Everything a restored training needs to continue exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "arch": str(self.arch),
            "torch_rng": torch.get_rng_state(),
            "data_rng": self.generator.get_state(),
            "scaler": self.scaler.state_dict(),
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["arch"] != str(self.arch):
            raise ValueError(f"checkpoint is for arch {state['arch']}, this trial trains {self.arch}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        torch.set_rng_state(state["torch_rng"].cpu())
        self.generator.set_state(state["data_rng"])
        self.scaler.load_state_dict(state["scaler"])
        self.best = state.get("best")


class StandaloneTrainable(ReconfigurableTrainable):
    """Trains ``space.decode(config)`` from scratch (:class:`ArchTraining`); reports
    ``val_acc`` every epoch and ``test_acc`` after the last.

    Use ``with_data(StandaloneTrainable, dataset, space=space)`` (``tune.with_parameters``
    after a check of the dataset) to share one dataset and the space object through the
    object store instead of loading them in every trial.  Trainables of one
    architecture with another objective set ``training_type`` to a subclass of
    :class:`ArchTraining`.
    """

    training_type: type[ArchTraining] = ArchTraining

    def _configure(self, config: dict[str, Any]) -> None:
        self.training = self.training_type(config, self.inputs.get("data"), self.inputs.get("space"))

    @property
    def model(self) -> nn.Module:
        return self.training.model

    def step(self) -> dict[str, Any]:
        return {**self.training.step(), "node_id": self.node_id}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """``state.pt``: everything to continue (the last epoch's weights under ``"model"``);
        with ``keep_best``, also ``best.pt``: the best val_acc epoch's weights, epoch and val_acc."""
        torch.save(self.training.state_dict(), os.path.join(checkpoint_dir, "state.pt"))
        if self.training.best is not None:
            torch.save(self.training.best, os.path.join(checkpoint_dir, "best.pt"))

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        state = torch.load(os.path.join(str(checkpoint), "state.pt"), weights_only=False, map_location=self.training.device)
        self.training.load_state_dict(state)
