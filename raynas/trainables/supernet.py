"""Weight-sharing supernet training as a Tune trainable, with its heuristics as config knobs.

One ``step`` is one epoch of single-path training: every SGD step runs one sub-network
(one op per edge; for DARTS also two inputs per node) drawn by the path sampler, so all
architectures of the space share one set of weights (after ``soft_warmup_epochs`` epochs
of the soft one-shot model, where every edge outputs the mean of all its ops).  After the
epoch a fixed probe set of architectures is scored with inherited weights: ``val_acc`` is
their mean accuracy and ``rank_stability`` the Kendall tau of their ranking against the
previous epoch's, a quick signal of whether the supernet's ranking has settled.

The knobs (``SupernetSettings``; ``bench/supernet_ranking.py`` measures each, the
results are in ``docs/supernet.md``): ``bn_mode``, ``bn_affine``, ``lr``, ``epochs``, ``batch_size``,
``weight_decay``, ``grad_clip``, ``warmup_epochs``, ``sampling``, ``path_dropout``,
``build["C"]`` (channels), ``build["N"]`` / ``build["layers"]`` (cells), ``data_portion``,
``eval_mode``, ``bn_sharing`` (each op its own BatchNorm, or one per edge shared by its ops),
``dropout`` (before the classifier), ``soft_warmup_epochs`` and ``rank_by`` (the score that
ranks sub-nets: accuracy or loss, on valid or train + valid).  With ``subnet_search`` the
last step also searches the sub-nets (``subnet_search.search_subnets``) and reports the
best, so one trial is a whole one-shot search.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import time
from typing import Any, Hashable, Iterator, Mapping, Sequence

import numpy as np
import torch
from ray import tune
from torch import nn

from raynas.arch import Arch
from raynas.data import ImageDataset, as_dataset
from raynas.devices import autocast, check_precision, grad_scaler, trial_device
from raynas.trainables.base import ReconfigurableTrainable
from raynas.trainables.loop import sgd, train_epoch
from raynas.trainables.mixed_net import leaned_weights, mixed_forward, uniform_weights
from raynas.trainables.settings import SAMPLINGS, SupernetSettings
from raynas.trainables.subnet_search import search_subnets
from raynas.trainables.supernet_nb101 import fair_paths
from raynas.trainables.supernet_net import build_supernet, share_edge_norms, use_batch_statistics
from search_spaces import SearchSpace, as_space
from search_spaces.base import check_choice

#: seed of the probe architectures, fixed so every recipe is probed on the same ones
PROBE_SEED = 12345
EVAL_BATCH = 256


class PathSampler:
    """Draws the sub-network of each training step.

    ``"uniform"`` samples a uniformly random architecture of the space (``space.sample``).
    ``"fair"`` (FairNAS' strict fairness) shuffles the op list of every edge once per group
    of ``len(space.ops)`` steps and takes the t-th op of each shuffle at step t, so each op
    of each edge trains exactly once per group; DARTS node inputs stay uniform (NB101: the
    graphs stay uniform and the op of every vertex position is shuffled, ``fair_paths``).
    ``"strict_fair"`` yields a whole fair group (a tuple of paths) each step.
    """

    def __init__(self, space: SearchSpace, mode: str, seed: int):
        self.space = space
        self.mode = check_choice("sampling", mode, SAMPLINGS)
        self.rng = np.random.default_rng(seed)
        self.queue: list[Hashable] = []

    def __next__(self) -> Hashable:
        if self.mode == "uniform":
            return self.space.sample(self.rng).spec
        if self.mode == "strict_fair":
            return tuple(self._fair_group())
        if not self.queue:
            self.queue = self._fair_group()
        return self.queue.pop(0)

    def __iter__(self) -> Iterator[Hashable]:
        return self

    def _fair_group(self) -> list[Hashable]:
        ops = list(self.space.ops)
        bases = [self.space.sample(self.rng).spec for _ in ops]
        if self.space.name == "nb101":
            return fair_paths(bases, self.rng)  # graphs uniform, ops fair per vertex position
        if self.space.name == "nb201":
            shuffles = [self.rng.permutation(ops) for _ in bases[0]]
            return [tuple(str(shuffles[k][t]) for k in range(len(base))) for t, base in enumerate(bases)]
        shuffles = [[self.rng.permutation(ops) for _ in cell] for cell in bases[0]]
        return [
            tuple(
                tuple((str(shuffles[c][j][t]), i) for j, (_, i) in enumerate(cell)) for c, cell in enumerate(base)
            )
            for t, base in enumerate(bases)
        ]

    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "queue": list(self.queue)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.queue = list(state["queue"])


def make_supernet(settings: SupernetSettings, data: ImageDataset) -> nn.Module:
    space = as_space(settings.space).name
    net = build_supernet(space, data.num_classes, data.in_shape, settings.build, settings.bn_affine, settings.dropout)
    if settings.bn_sharing == "shared":
        share_edge_norms(net)
    return use_batch_statistics(net) if settings.bn_mode == "batch" else net


def _batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(net: nn.Module, path: Hashable, data: ImageDataset, settings: SupernetSettings) -> None:
    """Re-estimate every BatchNorm's running statistics for ``path``: reset, then a
    cumulative average over the first ``bn_recal_batches`` training batches (a fixed
    shuffle, no augmentation)."""
    norms = _batch_norms(net)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    generator = torch.Generator(data.device).manual_seed(settings.seed)
    batches = data.batches("train", settings.batch_size, True, False, generator, settings.data_portion)
    for _, (x, _) in zip(range(settings.bn_recal_batches), batches):
        net(x, path)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.no_grad()
def path_metrics(
    net: nn.Module, path: Hashable, data: ImageDataset, settings: SupernetSettings, splits: Sequence[str] = ("valid",)
) -> tuple[float, float]:
    """Accuracy (percent) and mean cross-entropy of sub-network ``path`` with inherited
    weights on ``splits`` together, under the settings' ``bn_mode`` and ``eval_mode`` (one
    fixed batch per split).  The supernet is left unchanged."""
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in _batch_norms(net)]
    if settings.bn_mode == "recalibrate":
        recalibrate_bn(net, path, data, settings)
    net.eval()
    correct, loss, seen = 0, 0.0, 0
    with autocast(data.device, settings.precision):
        for split in splits:
            if settings.eval_mode == "full":
                batches = data.batches(split, EVAL_BATCH)
            else:
                generator = torch.Generator(data.device).manual_seed(settings.seed)
                batches = iter([next(data.batches(split, settings.batch_size, True, False, generator))])
            for x, y in batches:
                logits = net(x, path)
                correct = correct + (logits.argmax(1) == y).sum()
                loss = loss + nn.functional.cross_entropy(logits.float(), y, reduction="sum")
                seen += len(y)
    for m, (mean, var, count) in zip(_batch_norms(net), saved):
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
        m.num_batches_tracked.copy_(count)
    return 100.0 * int(correct) / seen, float(loss) / seen


def evaluate_path(
    net: nn.Module, path: Hashable, data: ImageDataset, settings: SupernetSettings, split: str = "valid"
) -> float:
    """Accuracy (percent) of sub-network ``path`` with inherited weights on ``split``."""
    return path_metrics(net, path, data, settings, (split,))[0]


def path_score(net: nn.Module, path: Hashable, data: ImageDataset, settings: SupernetSettings) -> float:
    """The score sub-nets are ranked by (``settings.rank_by``; larger is better): inherited
    accuracy, or the negated cross-entropy, on the valid split or on train and valid."""
    splits = ("train", "valid") if settings.rank_by.startswith("train_valid") else ("valid",)
    accuracy, loss = path_metrics(net, path, data, settings, splits)
    return -loss if settings.rank_by.endswith("loss") else accuracy


def probe_archs(space: SearchSpace, count: int) -> list[Arch]:
    """The fixed probe set: ``count`` distinct architectures drawn with :data:`PROBE_SEED`."""
    return space.sample_unique(count, PROBE_SEED)


def load_supernet(state: Mapping[str, Any], data: ImageDataset) -> tuple[nn.Module, SupernetSettings]:
    """The trained supernet and its settings from :meth:`SupernetTrainable.supernet_state`,
    on ``data``'s device."""
    settings = SupernetSettings.from_config(state["settings"])
    net = make_supernet(settings, data)
    net.load_state_dict(state["model"])
    return net.to(data.device).eval(), settings


def load_supernet_state(checkpoint: tune.Checkpoint | str) -> dict[str, Any]:
    """The scoring state (settings and weights) stored in a ``SupernetTrainable`` checkpoint."""
    if isinstance(checkpoint, tune.Checkpoint):
        with checkpoint.as_directory() as folder:
            return load_supernet_state(folder)
    return torch.load(os.path.join(str(checkpoint), "supernet.pt"), weights_only=False, map_location="cpu")["supernet"]


#: what a supernet trial reports
class SupernetTrainable(ReconfigurableTrainable):
    """Trains the supernet of ``config["space"]`` ("nb201", "darts" or "nb101") one epoch per step.

    Config: the :class:`SupernetSettings` keys.  Reports ``epoch``, ``train_loss``,
    ``val_acc`` (mean inherited accuracy of the probe set), ``probe_best_acc``,
    ``rank_stability`` (from epoch 2), ``params`` and timings.  Checkpoints hold the
    weights, optimiser, sampler and RNG states (a restored trial continues exactly) and
    the scoring state that :func:`load_supernet_state` reads back for ``score_archs``.
    """

    def _configure(self, config: dict[str, Any]) -> None:
        self.settings = s = SupernetSettings.from_config(config)
        self.space = as_space(s.space)
        self.device = trial_device(s.device)
        self.precision = check_precision(s.precision, self.device)
        self.data = as_dataset(self.inputs.get("data") or s.dataset).to(self.device)
        torch.manual_seed(s.seed)
        self.generator = torch.Generator(self.device).manual_seed(s.seed)
        self.sampler = PathSampler(self.space, s.sampling, s.seed)
        self.model = make_supernet(s, self.data).to(self.device)
        self.optimizer = sgd(self.model, s)
        self.scaler = grad_scaler(self.device, self.precision)
        self.probes = probe_archs(self.space, s.probe_archs)
        self.soft_weights = uniform_weights(self.space.name, self.device) if s.soft_warmup_epochs else None
        self.last_probe: list[float] | None = None
        self.epoch = 0

    def step(self) -> dict[str, Any]:
        start = time.perf_counter()
        train_loss = self._train_epoch()
        self.epoch += 1
        result: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": train_loss,
            "params": sum(p.numel() for p in self.model.parameters()),
            "epoch_time_s": time.perf_counter() - start,
            "device": str(self.device),
        }
        if self.probes:
            result |= self._probe()
        result["done"] = self.epoch >= self.settings.epochs
        if result["done"] and self.settings.subnet_search != "none":
            result |= self._search_subnets()
        return result

    def _search_subnets(self) -> dict[str, Any]:
        """The best sub-net by the ``rank_by`` score, in this trial's process (no
        nested Ray tasks competing with the trials for CPUs)."""
        s, start = self.settings, time.perf_counter()

        def score(texts: list[str]) -> list[float]:
            return [path_score(self.model, self.space.parse(t).spec, self.data, s) for t in texts]

        [(arch, value)] = search_subnets(self.space, score, s.subnet_search, s.subnet_samples, 1, s.seed)
        acc = value if s.rank_by == "valid_acc" else evaluate_path(self.model, arch.spec, self.data, s)
        return {"best_arch": str(arch), "best_arch_acc": acc, "best_arch_score": value,
                "search_time_s": time.perf_counter() - start}  # fmt: skip

    def _probe(self) -> dict[str, float]:
        start = time.perf_counter()
        accs = [evaluate_path(self.model, a.spec, self.data, self.settings) for a in self.probes]
        result = {"val_acc": float(np.mean(accs)), "probe_best_acc": max(accs)}
        if self.last_probe is not None:
            from scipy.stats import kendalltau  # slow to import; `raynas --help` and mistakes stay fast

            tau = kendalltau(self.last_probe, accs).statistic
            result["rank_stability"] = float(tau) if np.isfinite(tau) else 0.0
        self.last_probe = accs
        return result | {"probe_time_s": time.perf_counter() - start}

    def _train_epoch(self) -> float:
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr_at(self.epoch)
        soft = self.epoch < s.soft_warmup_epochs  # soft one-shot warm-up: a path drawn only to lean toward
        if soft:
            paths: Iterator[Any] = (self.space.sample(self.sampler.rng).spec if s.soft_alpha else None
                                    for _ in itertools.count())  # fmt: skip
        else:
            paths = self.sampler
        batches = zip(self.data.batches("train", s.batch_size, True, s.augment, self.generator, s.data_portion), paths)

        def batch_loss(batch: tuple[tuple[torch.Tensor, torch.Tensor], Hashable]) -> tuple[torch.Tensor, int]:
            (x, y), path = batch
            if soft:
                weights = self.soft_weights if path is None else leaned_weights(self.space.name, path, s.soft_alpha, self.device)
                return nn.functional.cross_entropy(mixed_forward(self.model, x, weights), y), len(y)
            paths = path if s.sampling == "strict_fair" else (path,)  # strict: a group, gradients summed
            loss = sum(nn.functional.cross_entropy(self.model(x, p, s.path_dropout), y) for p in paths)
            return loss, len(y)  # type: ignore[return-value]

        def where(batch: int | None) -> str:
            at = f"epoch {self.epoch + 1}" + (f", batch {batch}" if batch is not None else "")
            return f"{at} of the {s.space} supernet with lr={s.lr}"

        return train_epoch(self.model, self.optimizer, batches, batch_loss, s.grad_clip, where, self.device,
                           self.precision, self.scaler)  # fmt: skip

    def supernet_state(self) -> dict[str, Any]:
        """What scoring needs (plain values and CPU tensors, so any node can read it): settings and weights."""
        return {"settings": dataclasses.asdict(self.settings), "model": {k: v.cpu() for k, v in self.model.state_dict().items()}}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(
            {
                "supernet": self.supernet_state(),
                "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch,
                "sampler": self.sampler.get_state(),
                "last_probe": self.last_probe,
                "torch_rng": torch.get_rng_state(),
                "data_rng": self.generator.get_state(),
                "scaler": self.scaler.state_dict(),
            },
            os.path.join(checkpoint_dir, "supernet.pt"),
        )

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        state = torch.load(os.path.join(str(checkpoint), "supernet.pt"), weights_only=False, map_location=self.device)
        self.model.load_state_dict(state["supernet"]["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = state["epoch"]
        self.sampler.set_state(state["sampler"])
        self.last_probe = state["last_probe"]
        torch.set_rng_state(state["torch_rng"].cpu())
        self.generator.set_state(state["data_rng"])
        self.scaler.load_state_dict(state["scaler"])
