"""Name -> trainable registry: what ``raynas search --trainable NAME`` runs.

Each trainable declares, where it is defined, what an experiment needs to know about it:
the metric a search optimises by default, the metrics it reports (and the mode of each), how
often it checkpoints, the large read-only input Tune shares with its trials, and the spaces
it can train.  The experiment reads these declarations instead of knowing trainables by name,
so adding a trainable is one file that calls :func:`register_trainable`.

The built-in trainables are declared at the end of this module with their class as a
``"module:Class"`` path, imported when a trial first needs it: the driver checks names,
metrics and trainer keys against the declarations before torch or Ray Tune is imported.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

from raynas.trainables.settings import (
    DIFFERENTIABLE_SPACES,
    SUPERNET_SPACES,
    BenchmarkSettings,
    DifferentiableSettings,
    SampledSettings,
    SelfSupSettings,
    SupernetSettings,
    TrainerSettings,
)

T = TypeVar("T", bound=type)
#: the large inputs a trainable can take through ``tune.with_parameters``
SHARED_INPUTS = ("data", "benchmark")


@dataclass(frozen=True)
class TrainableInfo:
    """What the experiment knows about a registered trainable.

    Attributes:
        name: the registry name.
        summary: what it does, in a few words (CLI help, errors).
        target: the Tune class trainable, or its ``"module:Class"`` path (imported on
            first use of :attr:`cls`).
        settings: the dataclass of its trainer keys (names, types, defaults, ``check()``).
        metric: the metric a search optimises when none is given.
        reports: every metric it reports, with the mode a search on it uses.
        shared: ``"data"`` (an image dataset; trials train for ``epochs``) or
            ``"benchmark"`` (a benchmark table; trials look results up).
        checkpoint_frequency: iterations between checkpoints (0: none; look-ups are cheap
            to repeat).
        spaces: the search spaces it trains (None: every space).
        searches_archs: whether a searcher proposes each trial's architecture; otherwise
            every trial trains the whole space (a supernet) with its own seed.
        derives_archs: (with ``searches_archs`` False) whether each trial reports the
            architecture it found as ``arch``, which ``raynas train`` can retrain.
    """

    name: str
    summary: str
    target: type | str
    settings: type
    metric: str
    reports: Mapping[str, str]
    shared: str = "data"
    checkpoint_frequency: int = 1
    spaces: tuple[str, ...] | None = None
    searches_archs: bool = True
    derives_archs: bool = False

    @property
    def cls(self) -> type:
        """The Tune class trainable (imported here the first time for a declared path)."""
        if isinstance(self.target, str):
            module, _, name = self.target.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.target

    def mode(self, metric: str) -> str:
        """The mode of ``metric`` (``"max"`` for a metric it does not declare)."""
        return self.reports.get(metric, "max")

    def check_metric(self, metric: str) -> None:
        """A ValueError naming the metrics this trainable reports when it does not report ``metric``."""
        if metric not in self.reports:
            close = difflib.get_close_matches(metric, list(self.reports), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"trainable {self.name!r} ({self.summary}) does not report {metric!r}{hint} "
                f"It reports {sorted(self.reports)}"
            )

    def check_space(self, space: str) -> None:
        if self.spaces is not None and space not in self.spaces:
            raise ValueError(f"trainable {self.name!r} trains the spaces {list(self.spaces)}, not {space!r}")

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Trainer keys a search gives every trial: known to this trainable, of the right
        types and in range (a ValueError names the first one that is not)."""
        from raynas.trainables.settings import check_keys, key_names

        own = key_names(self.settings)
        for key in (k for k in options if k not in own):  # in the order given: the first one is named
            owners = [name for name, info in _TRAINABLES.items() if key in key_names(info.settings)]
            if owners:
                raise ValueError(f"{key!r} is a key of --trainable {' / '.join(owners)}, not of {self.name!r}: "
                                 f"add --trainable {owners[0]}, or leave the key out")  # fmt: skip
        check_keys(self.settings, options)


_TRAINABLES: dict[str, TrainableInfo] = {}


def register_trainable(
    name: str,
    summary: str,
    *,
    settings: type,
    metric: str,
    reports: Mapping[str, str],
    shared: str = "data",
    checkpoint_frequency: int = 1,
    spaces: tuple[str, ...] | None = None,
    searches_archs: bool = True,
) -> Callable[[T], T]:
    """Class decorator: make a Tune class trainable runnable as ``--trainable name``."""
    _check_declaration(name, shared, metric, reports)

    def deco(cls: T) -> T:
        declare_trainable(TrainableInfo(
            name, summary, cls, settings, metric, dict(reports), shared, checkpoint_frequency, spaces, searches_archs
        ))  # fmt: skip
        return cls

    return deco


def declare_trainable(info: TrainableInfo) -> TrainableInfo:
    """Register ``info`` (its class may be a ``"module:Class"`` path, imported on first use)."""
    _check_declaration(info.name, info.shared, info.metric, info.reports)
    _TRAINABLES[info.name] = info
    return info


def _check_declaration(name: str, shared: str, metric: str, reports: Mapping[str, str]) -> None:
    if shared not in SHARED_INPUTS:
        raise ValueError(f"shared must be one of {SHARED_INPUTS}, got {shared!r}")
    if metric not in reports or any(m not in ("max", "min") for m in reports.values()):
        raise ValueError(f"reports must map metric names to 'max'/'min' and include the default metric {metric!r}")
    if name in _TRAINABLES:
        raise ValueError(f"trainable {name!r} is already registered")


def trainable_info(name: str) -> TrainableInfo:
    """The registered trainable ``name`` (a built-in one or one a user registered)."""
    try:
        return _TRAINABLES[name]
    except KeyError:
        raise ValueError(f"unknown trainable {name!r}; available: {available_trainables()}") from None


def with_data(trainable: type | str, data: Any, space: Any = None) -> Any:
    """``tune.with_parameters(trainable, data=..., space=...)`` after checking, here in the
    driver, that ``data`` is a dataset the trainable reads (a wrong object would otherwise fail
    in every trial).  ``space``: the search space object the trials train (a space of your own
    reaches the workers this way; default: the one each config's ``space`` names).
    ``trainable`` is a class or a registered name."""
    from ray import tune

    from raynas.data import as_dataset

    cls = trainable_info(trainable).cls if isinstance(trainable, str) else trainable
    dataset = as_dataset(data)
    if hasattr(cls, "check_data"):  # what else a trainable asks of its data
        cls.check_data(dataset)
    shared = {"data": dataset} | ({"space": space} if space is not None else {})
    return tune.with_parameters(cls, **shared)


def available_trainables() -> list[str]:
    return sorted(_TRAINABLES)


# ---------------------------------------------------------------- the built-in trainables
#: what a stand-alone trial reports (with the mode a search on it would use; ``best_*`` with keep_best)
STANDALONE_REPORTS = {"val_acc": "max", "test_acc": "max", "train_loss": "min", "params": "min", "flops": "min",
                      "latency_ms": "min", "epoch": "max", "epoch_time_s": "min",
                      "best_val_acc": "max", "best_epoch": "max"}  # fmt: skip
#: what a look-up trial reports (the cost columns only where the table has them)
BENCHMARK_REPORTS = {"val_acc": "max", "test_acc": "max", "params": "min", "flops": "min", "latency_s": "min",
                     "latency_ms": "min",
                     "simulated_time_s": "min", "epoch": "max"}  # fmt: skip
#: what a label-free trial reports (``knn_acc`` only with ``knn_probe=True``)
SELFSUP_REPORTS = {"ssl_loss": "min", "knn_acc": "max", "params": "min", "flops": "min", "latency_ms": "min", "epoch": "max",
                   "epoch_time_s": "min"}  # fmt: skip
SAMPLED_REPORTS = {**STANDALONE_REPORTS, "val_acc_std": "min", "val_acc_min": "max"}
SUPERNET_REPORTS = {"val_acc": "max", "probe_best_acc": "max", "rank_stability": "max", "train_loss": "min",
                    "params": "min", "epoch": "max", "epoch_time_s": "min", "probe_time_s": "min",
                    "best_arch_acc": "max", "best_arch_score": "max", "search_time_s": "min"}  # fmt: skip
#: what a differentiable-search trial reports (``table_acc`` with a benchmark table, ``tau`` for GDAS)
DIFFERENTIABLE_REPORTS = {"val_acc": "max", "table_acc": "max", "train_loss": "min", "skip_count": "min",
                          "alpha_entropy": "min", "tau": "min", "params": "min", "epoch": "max",
                          "epoch_time_s": "min"}  # fmt: skip

_T = "raynas.trainables."
declare_trainable(TrainableInfo(
    "standalone", "trains each architecture from scratch", _T + "standalone:StandaloneTrainable",
    TrainerSettings, "val_acc", STANDALONE_REPORTS,
))  # fmt: skip
declare_trainable(TrainableInfo(
    "benchmark", "looks each architecture up in a benchmark table", _T + "benchmark:BenchmarkTrainable",
    BenchmarkSettings, "val_acc", BENCHMARK_REPORTS, shared="benchmark", checkpoint_frequency=0,
))  # fmt: skip
declare_trainable(TrainableInfo(
    "selfsup", "trains without labels, on a contrastive loss", _T + "selfsup:SelfSupervisedTrainable",
    SelfSupSettings, "ssl_loss", SELFSUP_REPORTS,
))  # fmt: skip
declare_trainable(TrainableInfo(
    "sampled", "trains several networks drawn from each NAGO generator", _T + "sampled:SampledTrainable",
    SampledSettings, "val_acc", SAMPLED_REPORTS, spaces=("nago", "nago-randwire", "nago-darts-like"),
))  # fmt: skip
declare_trainable(TrainableInfo(
    "supernet", "trains one weight-sharing supernet of the space per trial", _T + "supernet:SupernetTrainable",
    SupernetSettings, "val_acc", SUPERNET_REPORTS, spaces=SUPERNET_SPACES, searches_archs=False,
))  # fmt: skip
declare_trainable(TrainableInfo(
    "differentiable", "DARTS / GDAS / DrNAS differentiable search, one derived cell per trial",
    _T + "differentiable:DifferentiableTrainable", DifferentiableSettings, "val_acc", DIFFERENTIABLE_REPORTS,
    spaces=DIFFERENTIABLE_SPACES, searches_archs=False, derives_archs=True,
))  # fmt: skip
