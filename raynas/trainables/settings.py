"""Trainer keys of the flat Tune config, their defaults, and their checks.

The config is the contract (DESIGN.md): a space's own keys plus these trainer keys, all
plain values, so every searcher and every trainable agree on what a trial is.  Each
trainable's keys are one frozen dataclass; :func:`check_keys` checks a set of them (names,
types, ranges) in the driver before anything runs, and ``from_config`` checks the values a
trial received the same way.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from raynas.arch import Arch
from raynas.devices import PRECISIONS, check_device_name
from search_spaces import SearchSpace, as_space
from search_spaces.base import check_choice


#: learning-rate schedules of the trainer (``lr_schedule``)
LR_SCHEDULES = ("cosine", "step")


@dataclass(frozen=True)
class TrainerSettings:
    """Defaults chosen for the embedded digits task; override any of them in the config."""

    space: str | SearchSpace = "nb201"
    dataset: str = "digits"
    epochs: int = 4
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 64
    grad_clip: float = 5.0
    augment: bool = True
    seed: int = 0
    data_portion: float = 1.0
    build: dict[str, Any] = field(default_factory=dict)  # keyword options of space.build
    device: str = "auto"  # "auto" (the GPU Ray assigned, else the CPU), "cpu", "cuda", "cuda:N"
    precision: str = "32"  # "32", "bf16" or "fp16" (autocast; fp16 with gradient scaling)
    channels_last: bool = False  # the channels-last memory format for convolutions
    cutout: float = 0  # square cut out of each training image: pixels (>= 1) or a share of its side (DARTS: 0.5; 0: none)
    auxiliary_weight: float = 0.0  # weight of the auxiliary head's loss (DARTS: 0.4, with build.auxiliary)
    drop_path: float = 0.0  # drop-path probability at the last epoch, rising linearly from 0 (DARTS: 0.2)
    keep_best: bool = False  # checkpoints also hold the weights of the best val_acc epoch (best.pt)
    latency_batch: int = 1  # batch size of the inference latency each trial measures on its device
    latency_runs: int = 20  # timed forward passes, median reported as latency_ms (0: not measured)
    lr_schedule: str = "cosine"  # "cosine" (to 0 over the epochs) or "step" (x lr_gamma every lr_step epochs)
    lr_step: int = 30  # epochs between decays of the step schedule
    lr_gamma: float = 0.1  # factor of each decay of the step schedule

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TrainerSettings":
        """The settings among a trial's config keys (the space's own keys are ignored), checked."""
        values = {f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config}
        check_types(cls, values)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        positive = {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 < self.data_portion <= 1:
            raise ValueError(f"data_portion must be in (0, 1], got {self.data_portion!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0 (grad_clip 0 turns clipping off)")
        check_device_name(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.latency_batch < 1 or self.latency_runs < 0:
            raise ValueError(f"latency_batch must be >= 1 and latency_runs >= 0, got {self.latency_batch} and {self.latency_runs}")
        if self.cutout < 0 or (self.cutout >= 1 and self.cutout != int(self.cutout)):
            raise ValueError("cutout must be a whole number of pixels (>= 1), a share of the image's side (below 1) "
                             f"or 0 (none), got {self.cutout!r}")  # fmt: skip
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.lr_step < 1 or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr_step must be >= 1 and lr_gamma in (0, 1], got {self.lr_step!r} and {self.lr_gamma!r}")
        if not 0 <= self.drop_path < 1:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path!r}")
        if self.auxiliary_weight < 0:
            raise ValueError(f"auxiliary_weight must be >= 0, got {self.auxiliary_weight!r}")
        if self.auxiliary_weight > 0 and self.build.get("auxiliary") is not True:
            raise ValueError("auxiliary_weight > 0 needs a network with an auxiliary head: set build "
                             '{"auxiliary": true} (the DARTS spaces have one)')  # fmt: skip


def key_names(settings_type: type) -> list[str]:
    """The trainer keys of ``settings_type`` (a settings dataclass), in field order."""
    return [f.name for f in dataclasses.fields(settings_type)]


def check_keys(settings_type: type, values: Mapping[str, Any]) -> None:
    """``values`` as the keys of ``settings_type`` (a settings dataclass): every key known (an
    unknown one is named with the closest known one), every value of its type, every range."""
    names = key_names(settings_type)
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown trainer key {key!r}{hint} The trainer keys are {sorted(names)}")
    check_types(settings_type, values)
    settings = settings_type(**values)
    if hasattr(settings, "check"):
        settings.check()


def check_types(settings_type: type, values: Mapping[str, Any]) -> None:
    """A ValueError naming the first value in ``values`` that is not of its field's type."""
    hints = typing.get_type_hints(settings_type)
    for key, value in values.items():
        if key in hints and not _is_instance(value, hints[key]):
            raise ValueError(f"{key} must be {_describe(hints[key])}, got {value!r}")


def _is_instance(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, h) for h in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    names = {bool: "true or false ([True, False])", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    origin = typing.get_origin(hint) or hint
    return names.get(hint, "a JSON object" if origin is dict else f"a {getattr(origin, '__name__', origin)}")


def decode_trial(
    config: Mapping[str, Any], settings_type: type[TrainerSettings] = TrainerSettings, space: SearchSpace | None = None
) -> tuple[TrainerSettings, SearchSpace, Arch]:
    """Settings (of ``settings_type``, a trainable's own subclass), space and architecture of
    one trial's config.  The space is ``space`` when given (the object shared with every
    trial), else the one ``config["space"]`` is or names."""
    settings = settings_type.from_config(config)
    if space is None:
        space = as_space(settings.space)
    elif isinstance(config.get("space"), str) and config["space"] != space.name:
        raise ValueError(f"config space {config['space']!r} is not the space {space.name!r} the trial was given")
    return settings, space, space.decode(config)


# ---------------------------------------------------------------- each trainable's own keys
@dataclass(frozen=True)
class BenchmarkSettings:
    """The trainer keys of a look-up trial."""

    space: str | SearchSpace = "nb201"
    benchmark: str = ""  # the Parquet table
    dataset: str = "cifar10"  # its <dataset>_*_acc columns
    seed: int = 0  # unused: a look-up is deterministic; accepted as every trainable's key


#: the most networks a sampled trial draws from one generator
MAX_SAMPLES = 1000


@dataclass(frozen=True)
class SampledSettings(TrainerSettings):
    """The stand-alone trainer keys plus how many networks a trial draws from its generator."""

    graph_samples: int = 1

    def check(self) -> None:
        super().check()
        if not 1 <= self.graph_samples <= MAX_SAMPLES:
            raise ValueError(f"graph_samples: {self.graph_samples!r} is not allowed; allowed values are the integers 1..{MAX_SAMPLES}")


#: the contrastive losses: SimCLR's NT-Xent, Wu et al.'s memory-bank NCE, CSNAS's image + patch NCE
SSL_METHODS = ("simclr", "nce", "pirl")
#: SimCLR's CIFAR-10 temperature; Wu et al.'s (and CSNAS's) memory-bank temperature
DEFAULT_TEMPERATURE = {"simclr": 0.5, "nce": 0.07, "pirl": 0.07}


@dataclass(frozen=True)
class ViewSettings:
    """Strengths of the augmentations (SimCLR's CIFAR-10 values, crop scale as in its
    common small-image re-implementations)."""

    crop_scale: float = 0.2
    flip: bool = True
    jitter: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def check(self) -> None:
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"crop_scale must be in (0, 1], got {self.crop_scale!r}")
        if not 0 <= self.jitter < 1.25:
            raise ValueError(f"jitter must be in [0, 1.25) (factors stay positive), got {self.jitter!r}")
        for name in ("jitter_p", "grayscale_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SelfSupSettings(TrainerSettings):
    """Trainer keys of :class:`TrainerSettings` (``augment`` does not apply: both views are
    always augmented) plus the contrastive ones."""

    epochs: int = 10
    data_portion: float = 0.5
    batch_size: int = 128
    ssl_method: str = "simclr"
    temperature: float | None = None  # None: DEFAULT_TEMPERATURE[ssl_method]
    proj_dim: int = 128
    crop_scale: float = 0.2
    jitter: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    nce_negatives: int = 4096
    bank_momentum: float = 0.5
    patch_views: int = 2
    patch_weight: float = 0.5
    knn_probe: bool = False
    knn_k: int = 20

    def check(self) -> None:
        super().check()
        if self.ssl_method not in SSL_METHODS:
            raise ValueError(f"ssl_method must be one of {list(SSL_METHODS)}, got {self.ssl_method!r}")
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (or None for the method's default), got {self.temperature!r}")
        for name in ("proj_dim", "nce_negatives", "knn_k", "patch_views"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.patch_weight <= 1:
            raise ValueError(f"patch_weight must be in [0, 1] (the patch branch's share of the pirl loss), got {self.patch_weight!r}")
        self.views(flip=True).check()

    @property
    def tau(self) -> float:
        return self.temperature if self.temperature is not None else DEFAULT_TEMPERATURE[self.ssl_method]

    def views(self, flip: bool) -> ViewSettings:
        return ViewSettings(self.crop_scale, flip, self.jitter, self.jitter_p, self.grayscale_p)


#: the spaces with a weight-sharing supernet (``raynas.trainables.supernet_net.SUPERNETS``)
SUPERNET_SPACES = ("nb201", "darts", "nb101")
BN_MODES = ("recalibrate", "running", "batch")
SAMPLINGS = ("uniform", "fair", "strict_fair")
#: BatchNorms of an edge's ops: each op its own (``per_op``), or one per edge shared by its ops (``shared``)
BN_SHARINGS = ("per_op", "shared")
#: the supernets with one op module per edge, where ops can share an edge's BatchNorm and mix (soft one-shot)
SOFT_AND_SHARED_BN_SPACES = ("nb201", "darts")
EVAL_MODES = ("full", "minibatch")
#: what ranks a sub-net: inherited accuracy or (negated) cross-entropy, on the valid split or on train + valid
RANK_BYS = ("valid_acc", "valid_loss", "train_valid_acc", "train_valid_loss")
SUBNET_SEARCHES = ("none", "random", "evolution")


@dataclass(frozen=True)
class SupernetSettings(TrainerSettings):
    """Supernet training and evaluation knobs; the flat config overrides any of them.

    ``bn_mode``: statistics a sub-network's BatchNorms use when it is evaluated:
    ``"recalibrate"`` (running statistics re-estimated on ``bn_recal_batches`` training
    batches for that sub-network first), ``"running"`` (the statistics tracked during
    supernet training, shared by all paths) or ``"batch"`` (the evaluation batch's own).
    ``bn_affine``: learnable BatchNorm scale/shift in the cell ops.  ``warmup_epochs``:
    linear learning-rate warm-up before the cosine decay.  ``sampling``: ``"uniform"``
    (each edge's op drawn independently every step) or ``"fair"`` (FairNAS: every op of
    every edge exactly once in each group of ``len(ops)`` steps) or ``"strict_fair"`` (FairNAS'
    strict fairness: each step trains the whole group on one batch, gradients summed into one
    update, so every op of every edge gets exactly one gradient per step; ``train_loss`` is
    then the group's summed loss; the default: with ``rank_by="train_valid_loss"`` it ranked
    best on NB201 and NB101, at ``len(ops)`` passes per step).  ``path_dropout``:
    probability of dropping each sampled non-identity edge per sample (DARTS'
    ``drop_path``).  ``build``: the supernet's size (low fidelity: fewer channels ``C`` /
    cells ``N`` or ``layers``); ``data_portion``: share of the training split used.
    ``eval_mode``: ``"full"`` (accuracy on the whole split) or ``"minibatch"`` (on one
    fixed batch of ``batch_size`` images).  ``rank_by``: the score sub-nets are ranked and
    searched by (:data:`RANK_BYS`): inherited accuracy (percent) or the negated mean
    cross-entropy, on the valid split or on train and valid together (four times the images
    on digits: a less noisy score); the probes always report valid accuracy.  ``bn_sharing``: ``"per_op"`` (every op of an
    edge has its own output BatchNorm, as in the stand-alone op) or ``"shared"`` (the ops of an
    edge share one output BatchNorm, statistics and affine parameters).
    ``dropout``: dropout before the classifier during training.  ``soft_warmup_epochs``: the
    first epochs train the soft one-shot model (every edge outputs the mean of all its ops;
    DARTS nodes take every input) before single-path training; ``soft_alpha`` leans those
    weights toward a uniformly drawn path each step (the study's ``softoneshot_alpha``: the
    path's op gets ``1/n + soft_alpha``, its official scripts use 0.01; 0: every op at 1/n, no
    path drawn).  ``probe_archs``:
    architectures scored after every epoch for the reported ranking signal (0: no probing,
    no ``val_acc``).
    ``subnet_search``: after the last epoch, search the sub-nets by inherited validation
    accuracy (``"random"`` or ``"evolution"`` over ``subnet_samples`` distinct
    architectures; ``"none"``: no search), reported as ``best_arch`` / ``best_arch_acc``,
    so training and search are one ``raynas search --trainable supernet`` command.
    """

    epochs: int = 60
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    warmup_epochs: int = 0
    sampling: str = "strict_fair"
    path_dropout: float = 0.0
    bn_mode: str = "recalibrate"
    bn_affine: bool = True
    bn_recal_batches: int = 4
    eval_mode: str = "full"
    rank_by: str = "train_valid_loss"
    bn_sharing: str = "per_op"
    dropout: float = 0.0
    soft_warmup_epochs: int = 0
    soft_alpha: float = 0.0
    probe_archs: int = 8
    subnet_search: str = "none"
    subnet_samples: int = 100
    build: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        super().check()
        space = as_space(self.space)
        check_choice("space", space.name, list(SUPERNET_SPACES))
        check_choice("bn_mode", self.bn_mode, BN_MODES)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_choice("eval_mode", self.eval_mode, EVAL_MODES)
        check_choice("rank_by", self.rank_by, RANK_BYS)
        check_choice("bn_sharing", self.bn_sharing, BN_SHARINGS)
        check_choice("subnet_search", self.subnet_search, SUBNET_SEARCHES)
        if not (isinstance(self.subnet_samples, int) and self.subnet_samples >= 1):
            raise ValueError(f"subnet_samples must be an int >= 1, got {self.subnet_samples!r}")
        if not isinstance(self.bn_affine, bool):
            raise ValueError(f"bn_affine: {self.bn_affine!r} is not allowed; allowed values are [True, False]")
        if not 0 <= self.path_dropout < 1:
            raise ValueError(f"path_dropout must be in [0, 1), got {self.path_dropout!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not (isinstance(self.soft_warmup_epochs, int) and 0 <= self.soft_warmup_epochs < self.epochs):
            raise ValueError(f"soft_warmup_epochs must be an int in [0, epochs={self.epochs}), got {self.soft_warmup_epochs!r}")
        most = 1 - 1 / len(space.ops)
        if not (isinstance(self.soft_alpha, (int, float)) and 0 <= self.soft_alpha <= most):
            raise ValueError(f"soft_alpha must be a number in [0, {most:g}] (1 - 1/ops: the path's op weighted 1), "
                             f"got {self.soft_alpha!r}")  # fmt: skip
        if self.soft_alpha and not self.soft_warmup_epochs:
            raise ValueError(f"soft_alpha={self.soft_alpha} leans the soft one-shot warm-up toward each step's path: "
                             "give soft_warmup_epochs > 0 too")  # fmt: skip
        if (self.bn_sharing == "shared" or self.soft_warmup_epochs) and space.name not in SOFT_AND_SHARED_BN_SPACES:
            raise ValueError(f"bn_sharing='shared' and soft_warmup_epochs > 0 are built for the spaces "
                             f"{list(SOFT_AND_SHARED_BN_SPACES)} (ops on edges), not {space.name!r}")  # fmt: skip
        if not (isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs < self.epochs):
            raise ValueError(f"warmup_epochs must be an int in [0, epochs={self.epochs}), got {self.warmup_epochs!r}")
        if not (isinstance(self.bn_recal_batches, int) and self.bn_recal_batches >= 1):
            raise ValueError(f"bn_recal_batches must be an int >= 1, got {self.bn_recal_batches!r}")
        if not (isinstance(self.probe_archs, int) and self.probe_archs != 1 and self.probe_archs >= 0):
            raise ValueError(f"probe_archs must be 0 (no probing) or an int >= 2 (a ranking needs two), got {self.probe_archs!r}")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based): linear warm-up, then cosine to zero
        (with no warm-up, the stand-alone trainer's per-epoch cosine)."""
        if epoch < self.warmup_epochs:
            return self.lr * (epoch + 1) / (self.warmup_epochs + 1)
        span = self.epochs - self.warmup_epochs
        return self.lr * 0.5 * (1 + math.cos(math.pi * (epoch - self.warmup_epochs) / span))


#: differentiable one-shot methods (``method``): DARTS' softmax relaxation, GDAS' Gumbel-softmax
#: sampling (one op per edge, hard forward), DrNAS' Dirichlet weights with a KL regulariser
DIFFERENTIABLE_METHODS = ("darts", "gdas", "drnas")
#: the spaces with a mixed-op relaxation (``raynas.trainables.mixed_net``)
DIFFERENTIABLE_SPACES = ("nb201", "darts")


@dataclass(frozen=True)
class DifferentiableSettings(TrainerSettings):
    """Differentiable search (DARTS' search recipe as defaults); the flat config overrides any of them.

    Network weights train by SGD on the ``train`` split, architecture weights by Adam
    (``arch_lr``, betas (0.5, 0.999), ``arch_weight_decay``) on the ``valid`` split, one step
    each per batch.  ``order``: 1 (first-order) or 2 (DARTS' unrolled second-order gradient;
    ``method="darts"`` only).  ``tau_max`` -> ``tau_min``: GDAS' Gumbel temperature, linear over
    the epochs.  ``drnas_reg``: weight of DrNAS' KL(Dirichlet(beta) || Dirichlet(1)).
    ``skip_stop``: DARTS+ early stopping, the trial ends once the derived cell (DARTS: the
    normal cell) holds this many skip-connections (0: never).  ``arch_warmup``: epochs in which
    only the network weights train, so that parameter-free ops do not win while the convolutions
    are still untrained (PC-DARTS and DrNAS: 15 of 50 epochs).  ``benchmark``: a Parquet table
    of the space (e.g. ``nb201_all.parquet``) whose ``benchmark_dataset`` test accuracy of the
    derived cell is reported each epoch as ``table_acc``.  ``build``: the supernet's size;
    ``bn_affine``: learnable BatchNorm scale/shift in the cell ops (DARTS searches without).
    """

    epochs: int = 50
    lr: float = 0.025
    nesterov: bool = False
    weight_decay: float = 3e-4
    method: str = "darts"
    order: int = 1
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    drnas_reg: float = 1e-3
    skip_stop: int = 0
    arch_warmup: int = 0
    bn_affine: bool = False
    benchmark: str = ""
    benchmark_dataset: str = "cifar10"
    latency_runs: int = 0  # the searched network is a supernet: no latency to measure

    def check(self) -> None:
        super().check()
        check_choice("space", as_space(self.space).name, list(DIFFERENTIABLE_SPACES))
        check_choice("method", self.method, DIFFERENTIABLE_METHODS)
        check_choice("order", self.order, [1, 2])
        if self.order == 2 and self.method != "darts":
            raise ValueError(f"order=2 (the unrolled gradient) needs method='darts', got method={self.method!r}")
        if not self.arch_lr > 0 or self.arch_weight_decay < 0 or self.drnas_reg < 0:
            raise ValueError(f"arch_lr must be > 0, arch_weight_decay and drnas_reg >= 0, got {self.arch_lr!r}, "
                             f"{self.arch_weight_decay!r} and {self.drnas_reg!r}")  # fmt: skip
        if not 0 < self.tau_min <= self.tau_max:
            raise ValueError(f"need 0 < tau_min <= tau_max, got tau_min={self.tau_min!r} and tau_max={self.tau_max!r}")
        if not (isinstance(self.arch_warmup, int) and 0 <= self.arch_warmup < self.epochs):
            raise ValueError(f"arch_warmup must be an int in [0, epochs={self.epochs}), got {self.arch_warmup!r}")
        if not (isinstance(self.skip_stop, int) and self.skip_stop >= 0):
            raise ValueError(f"skip_stop must be an int >= 0 (0: no early stopping), got {self.skip_stop!r}")
        if not isinstance(self.bn_affine, bool):
            raise ValueError(f"bn_affine: {self.bn_affine!r} is not allowed; allowed values are [True, False]")
        for name in ("cutout", "drop_path", "keep_best"):
            if getattr(self, name):
                raise ValueError(f"{name} does not apply to a differentiable search (a final-training key: give it to "
                                 "raynas train)")  # fmt: skip
        if self.benchmark and not os.path.isfile(os.path.expanduser(self.benchmark)):
            raise ValueError(f"benchmark {self.benchmark!r} is not a file (a Parquet table of the space, e.g. "
                             "nb201_all.parquet; empty: no table look-up)")  # fmt: skip
