"""Common ground of raynas searchers: a Tune ``Searcher`` that knows its search space.

It owns what every NAS searcher needs and none should write twice: decoding and encoding
through the space, never proposing an architecture whose canonical form was already
proposed (until the space is exhausted), remembering results, metric/mode handling in
Tune's convention, and ``save``/``restore`` of the whole state.  Subclasses implement
``_propose`` (and optionally ``_observe``) and add their own fields to the state.
"""
from __future__ import annotations

import math
import os
import pickle
import tempfile
from typing import Any, Mapping

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Domain

from raynas.arch import Arch
from raynas.io import atomic_pickle
from search_spaces import SearchSpace, as_space

FINISHED = Searcher.FINISHED


def searcher_bytes(searcher: Searcher) -> bytes | None:
    """What ``searcher.save`` writes, or None for a searcher that cannot save itself (it is
    then rebuilt another way, e.g. by replaying the points it was told)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "searcher.pkl")
        try:
            searcher.save(path)
        except (NotImplementedError, ValueError, TypeError, pickle.PicklingError, AttributeError):
            return None
        with open(path, "rb") as handle:
            return handle.read()


def restore_searcher(searcher: Searcher, data: bytes) -> None:
    """``searcher.restore`` from what :func:`searcher_bytes` returned."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "searcher.pkl")
        with open(path, "wb") as handle:
            handle.write(data)
        searcher.restore(path)


class ArchSearcher(Searcher):
    """Base class: suggest configs of ``space`` and learn from ``metric`` under ``mode``.

    Args:
        space: a :class:`~search_spaces.SearchSpace` or its registry name.
        metric: result key to optimise (Tune may also set it via ``set_search_properties``).
        mode: ``"max"`` or ``"min"``.
        seed: seed of the searcher's own random generator.
        max_resample: tries to find an unseen architecture by sampling before falling back
            to enumerating the (finite) space to prove it is exhausted.
    """

    def __init__(
        self,
        space: SearchSpace | str,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        max_resample: int = 1000,
    ):
        if mode not in (None, "max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        self.space = as_space(space)
        self.seed = seed
        self.max_resample = max_resample
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()
        self.pending: dict[str, Arch] = {}
        self.history: list[tuple[Arch, float]] = []
        self.values: dict[str, float] = {}  # canonical key -> metric value of finished trials
        self.failed: list[Arch] = []
        self._left: list[Arch] | None = None  # unseen archs of a nearly exhausted finite space

    # ------------------------------------------------------------------ Tune protocol
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Accept Tune's metric/mode when not given; the config may hold this space's own
        domains (they are the same space) and any trainer constants."""
        own = set(self.space.config_keys())
        foreign = [k for k, v in (config or {}).items() if isinstance(v, Domain) and k not in own]
        if foreign:
            raise ValueError(
                f"{type(self).__name__} searches the {self.space.name} space only; param_space has "
                f"other search domains {foreign}: make them constants or search them with another searcher"
            )
        if metric and self._metric and metric != self._metric:
            raise ValueError(f"searcher optimises {self._metric!r} but Tune was given metric {metric!r}")
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        self._check_objective()
        arch = self._propose(trial_id)
        if arch is None or arch == FINISHED:
            return arch
        self._mark_seen(arch)
        self.pending[trial_id] = arch
        return self.space.encode(arch)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        arch = self.pending.pop(trial_id, None)
        if arch is None:
            return
        value = self._value(result)
        if error or value is None:
            self.failed.append(arch)
            self._observe_failure(arch)
            return
        self._record(arch, value)

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:
        """Warm-start with an architecture evaluated elsewhere (Tune's signature)."""
        arch = self.space.decode(parameters)
        self._mark_seen(arch)
        if error or pruned or value is None:
            self.failed.append(arch)
            return
        self._record(arch, float(value))

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        return {
            "metric": self._metric,
            "mode": self._mode,
            "rng": self.rng.bit_generator.state,
            "seen": set(self.seen),
            "pending": {t: a.text for t, a in self.pending.items()},
            "history": [(a.text, v) for a, v in self.history],
            "failed": [a.text for a in self.failed],
        }

    def set_state(self, state: dict) -> None:
        self._metric, self._mode = state["metric"], state["mode"]
        self.rng.bit_generator.state = state["rng"]
        self.seen = set()
        for key in state["seen"]:
            self._mark_seen_key(key)
        self.pending = {t: self.space.parse(s) for t, s in state["pending"].items()}
        self.history = [(self.space.parse(s), v) for s, v in state["history"]]
        self.values = {a.key: v for a, v in self.history}
        self.failed = [self.space.parse(s) for s in state["failed"]]

    def save(self, checkpoint_path: str) -> None:
        atomic_pickle({"class": type(self).__name__, "space": self.space.name, "state": self.get_state()}, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            saved = pickle.load(handle)
        if saved.get("class") != type(self).__name__ or saved.get("space") != self.space.name:
            raise ValueError(
                f"{checkpoint_path} holds a {saved.get('class')} over {saved.get('space')!r}, "
                f"not a {type(self).__name__} over {self.space.name!r}"
            )
        self.set_state(saved["state"])

    def _record(self, arch: Arch, value: float) -> None:
        self.history.append((arch, value))
        self.values[arch.key] = value
        self._observe(arch, value)

    # ------------------------------------------------------------------ helpers for subclasses
    def _propose(self, trial_id: str) -> Arch | str | None:
        """Next architecture for ``trial_id``, ``None`` to wait, or ``FINISHED``."""
        raise NotImplementedError

    def _mark_seen(self, arch: Arch) -> None:
        """Never propose ``arch`` (or an equivalent) again."""
        self._mark_seen_key(arch.key)

    def _mark_seen_key(self, key: str) -> None:
        self.seen.add(key)

    def _observe(self, arch: Arch, value: float) -> None:
        """Learn from a finished evaluation (``value`` in the metric's own units)."""

    def _observe_failure(self, arch: Arch) -> None:
        """Learn from a failed evaluation."""

    def score(self, value: float) -> float:
        """``value`` oriented so that larger is better, whatever the mode."""
        return value if self._mode == "max" else -value

    def is_unseen(self, arch: Arch) -> bool:
        return arch.key not in self.seen

    def random_unseen(self) -> Arch | str:
        """A random architecture not proposed before, or ``FINISHED`` if none is left."""
        if self._left is None:
            arch = self._sample_unseen()
            if arch is not None:
                return arch
            try:  # sampling keeps hitting seen archs: list what is left, once
                self._left = list({a: None for a in self.space.enumerate() if self.is_unseen(a)})
            except TypeError:  # too large to enumerate, so far from exhausted: keep sampling
                while arch is None:
                    arch = self._sample_unseen()
                return arch
        self._left = [a for a in self._left if self.is_unseen(a)]
        return self._left[int(self.rng.integers(len(self._left)))] if self._left else FINISHED

    def _sample_unseen(self) -> Arch | None:
        """An unseen sample within ``max_resample`` tries, else None."""
        for _ in range(self.max_resample):
            arch = self.space.sample(self.rng)
            if self.is_unseen(arch):
                return arch
        return None

    def best(self) -> tuple[Arch, float] | None:
        """Best finished architecture and its metric value so far."""
        if not self.history:
            return None
        return max(self.history, key=lambda item: self.score(item[1]))

    def _value(self, result: Mapping[str, Any] | None) -> float | None:
        if not result or self._metric not in result:
            return None
        value = float(result[self._metric])
        return value if math.isfinite(value) else None

    def _check_objective(self) -> None:
        if not self._metric or not self._mode:
            raise ValueError(
                f"{type(self).__name__} needs metric and mode (pass them to the searcher or to tune.TuneConfig)"
            )
