"""Name -> trainable registry: what ``raynas search --trainable NAME`` runs.

Each trainable declares, where it is defined, what an experiment needs to know about it:
the metric a search optimises by default, the metrics it reports (and the mode of each), how
often it checkpoints, the large read-only input Tune shares with its trials, and the spaces
it can train.  The experiment reads these declarations instead of knowing trainables by name,
so adding a trainable is one file that calls :func:`register_trainable`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

T = TypeVar("T", bound=type)
#: the large inputs a trainable can take through ``tune.with_parameters``
SHARED_INPUTS = ("data", "benchmark")


@dataclass(frozen=True)
class TrainableInfo:
    """What the experiment knows about a registered trainable.

    Attributes:
        name: the registry name.
        summary: what it does, in a few words (CLI help, errors).
        cls: the Tune class trainable.
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
    """

    name: str
    summary: str
    cls: type
    settings: type
    metric: str
    reports: Mapping[str, str]
    shared: str = "data"
    checkpoint_frequency: int = 1
    spaces: tuple[str, ...] | None = None
    searches_archs: bool = True

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
        from raynas.trainables.settings import check_keys

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
    if shared not in SHARED_INPUTS:
        raise ValueError(f"shared must be one of {SHARED_INPUTS}, got {shared!r}")
    if metric not in reports or any(m not in ("max", "min") for m in reports.values()):
        raise ValueError(f"reports must map metric names to 'max'/'min' and include the default metric {metric!r}")

    def deco(cls: T) -> T:
        if name in _TRAINABLES:
            raise ValueError(f"trainable {name!r} is already registered")
        _TRAINABLES[name] = TrainableInfo(
            name, summary, cls, settings, metric, dict(reports), shared, checkpoint_frequency, spaces, searches_archs
        )
        return cls

    return deco


def trainable_info(name: str) -> TrainableInfo:
    """The registered trainable ``name`` (importing this module imports :mod:`raynas.trainables`
    first, which registers the built-in ones)."""
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

