"""Any Tune searcher, searching an embedding space: points it proposes become architectures.

The candidate pool is the set of embedded architectures.  The inner searcher (hyperopt's TPE,
a nevergrad optimizer, Ax, or any Tune ``Searcher`` over the box) proposes a point in the
(PCA-reduced, unit-scaled) embedding space; the point is mapped to the nearest pool member not
yet tried, and the inner searcher is told the value measured there.  Nothing here reads the
space's encoding, so the same searcher works for every space whose architectures are embedded.

A failed trial (an error, a missing or non-finite metric) is told to the inner searcher as the
worst value seen so far: some optimizers (nevergrad's sequential ones) wait for every point
they proposed to be told before proposing the next.
"""
from __future__ import annotations

import numpy as np
from ray.tune.search import Searcher

from predictors.embeddings import ArchEmbeddings
from raynas.arch import Arch
from searchers.base import FINISHED, restore_searcher, searcher_bytes
from searchers.box_searchers import SCORE, box_keys, make_box_searcher
from searchers.pool import PoolSearcher


class EmbeddingPoolSearcher(PoolSearcher):
    """A Tune ``Searcher`` over the architectures of ``embeddings``, driven by ``optimizer``.

    Args:
        embeddings: the candidate pool and its vectors.
        optimizer: ``"nevergrad:<Name>"`` (e.g. ``nevergrad:NGOpt``), ``"hyperopt:tpe"`` or
            ``"ax"`` (:func:`~searchers.box_searchers.make_box_searcher`).
        dim: PCA dimensions of the box the optimizer searches.
        budget: evaluation budget told to nevergrad (NGOpt picks its method from it).
        max_resample: see :class:`~searchers.base.ArchSearcher`.
    """

    def __init__(
        self,
        embeddings: ArchEmbeddings,
        optimizer: str = "nevergrad:NGOpt",
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        dim: int = 8,
        budget: int = 1000,
        max_resample: int = 1000,
    ):
        super().__init__(embeddings, metric, mode, seed, dim, max_resample)
        self.optimizer, self.budget = optimizer, budget
        self.inner = self._new_inner()
        self.asked: dict[str, np.ndarray] = {}  # trial id -> the point the inner searcher proposed
        self.told: list[tuple[np.ndarray, float]] = []  # what the inner searcher learnt, for replay

    def _new_inner(self) -> Searcher:
        return make_box_searcher(self.optimizer, self.points.min(axis=0), self.points.max(axis=0), self.seed, self.budget)

    # ------------------------------------------------------------------ proposals
    def _propose(self, trial_id: str) -> Arch | str:
        if not self.free.any():
            return FINISHED
        config = self.inner.suggest(trial_id)
        if config is None or config == FINISHED:  # the optimizer waits for a result, or is done: a random free member
            return self.embeddings.archs[self.random_free()]
        point = np.array([config[key] for key in box_keys(self.points.shape[1])], dtype=np.float64)
        self.asked[trial_id] = point
        return self.embeddings.archs[self._nearest_free(point)]

    def _nearest_free(self, point: np.ndarray) -> int:
        candidates = np.flatnonzero(self.free)
        distance = ((self.points[candidates] - point) ** 2).sum(axis=1)
        return int(candidates[np.argmin(distance)])

    # ------------------------------------------------------------------ bookkeeping
    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result, error)
        point = self.asked.pop(trial_id, None)
        if point is None:
            return
        value = None if error else self._value(result)
        score = self._penalty() if value is None else self.score(value)
        self.inner.on_trial_complete(trial_id, {SCORE: score})
        self.told.append((point, score))

    def _penalty(self) -> float:
        """What a failed point is told: the worst score seen so far (0 before any)."""
        return min((self.score(v) for _, v in self.history), default=0.0)

    def get_state(self) -> dict:
        return {
            **super().get_state(),
            "told": [(p.tolist(), v) for p, v in self.told],
            "inner": searcher_bytes(self.inner),
        }

    def set_state(self, state: dict) -> None:
        """The inner searcher restores itself where it can save; else a fresh one is taught every
        point it had been told.  Trials pending at save time are finished by Tune's restore but
        are not told to the inner searcher."""
        super().set_state(state)
        self.told = [(np.asarray(p), v) for p, v in state["told"]]
        self.asked = {}
        self._rebuild_inner(state["inner"])

    def _rebuild_inner(self, saved: bytes | None) -> None:
        """A fresh inner searcher restored from ``saved`` (what it saved), or, when it could not
        save itself, taught every point told so far (the points still out are then forgotten)."""
        self.inner = self._new_inner()
        if saved is not None:
            restore_searcher(self.inner, saved)
            return
        self.asked = {}
        keys = box_keys(self.points.shape[1])
        for point, score in self.told:
            self.inner.add_evaluated_point(dict(zip(keys, point.tolist())), score)

    # pickle and deepcopy the inner searcher through its own save: HyperOptSearch holds a lambda
    def __getstate__(self) -> dict:
        return {**self.__dict__, "inner": searcher_bytes(self.inner)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "inner"})
        self._rebuild_inner(state["inner"])

