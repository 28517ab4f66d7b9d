"""Search in an architecture-embedding space instead of a space's own parametrisation.

The candidate pool is the set of embedded architectures.  ``optimizer="gp-ei"`` is the
published method: a Matern-5/2 GP on the embeddings of evaluated architectures and the
expected improvement over every pool member not yet tried.  Any black-box optimiser
(``nevergrad:<Name>``, ``hyperopt:tpe``, ``ax``) can instead propose a point in the
(PCA-reduced, unit-scaled) embedding space, which is mapped to the nearest architecture not
yet evaluated; the optimiser is told the value measured there.  Because nothing here reads
the space's encoding, the same searcher works for every space whose architectures are
embedded.  ``local=1`` adds the one thing taken from the space, its move set: EI is
maximised over the neighbours of the best architecture first.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from predictors.embeddings import ArchEmbeddings, reduce_vectors
from predictors.gp import GPSurrogate, check_warp, normal_scores, warped
from raynas.arch import Arch
from raynas.benchmarks import read_parquet
from searchers.base import FINISHED, ArchSearcher
from searchers.embedding_proposers import Proposer, make_proposer


class EmbeddingSearcher(ArchSearcher):
    """A Tune ``Searcher`` over the architectures of ``embeddings``.

    Args:
        embeddings: the candidate pool and its vectors (:class:`ArchEmbeddings`).
        optimizer: ``"gp-ei"``, ``"nevergrad:NGOpt"`` (any nevergrad name), ``"hyperopt:tpe"``, ``"ax"``.
        num_initial: random pool members evaluated before the optimiser takes over (gp-ei).
        dim: PCA dimensions the optimiser works in.  Default for gp-ei: embeddings of up to
            32 dimensions (one-hot NB201 has 30) as they are, larger ones reduced to 16: a GP
            fitted on 100 points cannot use 256 directions, and fitting in 16 is ~10x faster
            (NB201, 100 queries, 10 seeds: 94.08 with all 256, 94.10 with 16, 94.04 with 8).
            Default for the other optimisers: 8.
        warp: ``"rank"`` fits the GP to the normal scores of the ranks of the values seen
            (a Gaussian copula), so a few collapsed architectures (NB201 has cells at 10%)
            do not flatten the surrogate around the good ones; ``"none"`` fits raw values.
        budget: evaluation budget told to nevergrad (NGOpt picks its method from it).
        max_train: GP training-set cap (best observations kept), bounding the cost per step.
        refit_until, refit_growth: GP hyper-parameters are fitted by marginal likelihood at
            every step up to ``refit_until`` observations, after that only when the
            observations have grown by ``refit_growth`` since the last fit (in between the
            GP is only conditioned on the new data, a Cholesky instead of an optimisation), so
            a search of thousands of trials costs the same per step as one of hundreds.
        prior: scores of the pool from knowledge gathered elsewhere (see :func:`prior_scores`),
            e.g. a predictor fitted on other spaces' benchmark tables.  The GP then models
            the residual of a linear prior mean ``a + b * prior`` (``a``, ``b`` least squares
            on the observations at every step), so a good prior guides the early queries, a
            reversed one is used as well (``b`` < 0) and an uninformative one is fitted away
            (``b`` -> 0).  NB201, 100 queries, 100 seeds, a CG
            predictor fitted on the NB101 + NB301 tables as prior (SRCC 0.83): digits C=8 N=1
            embeddings 94.14 without, 94.19 with; synthetic-input C=16 N=2 embeddings 94.28.
        local: gp-ei maximises EI over the untried pool members one move (the space's
            ``neighbors``) away from the ``local`` best architectures seen, and over the whole
            pool only when none is left: the GP picks the order, the space's moves keep the
            late queries near the incumbent, where the global EI scatters them (BANANAS's
            mutation-based acquisition search, with the pool as its limit).  ``0``: the
            published method, EI over the whole pool.  NB201, 100 queries, 100 seeds, with
            the transfer prior above: ``local=1`` 94.37 +- 0.00 (C=16 N=2 embeddings; every run
            finds the optimum) and 94.35 (digits C=8 N=1), against 94.28 / 94.19 with ``local=0``;
            without the prior ``local=1`` gives 94.26 on either table.
        local_every: take the local step on every ``local_every``-th query only.
    """

    def __init__(
        self,
        embeddings: ArchEmbeddings,
        optimizer: str = "gp-ei",
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        num_initial: int = 10,
        dim: int | None = None,
        budget: int = 1000,
        max_train: int | None = 500,
        max_resample: int = 1000,
        warp: str = "rank",
        refit_until: int = 200,
        refit_growth: float = 0.1,
        prior: Any = None,
        local: int = 0,
        local_every: int = 1,
    ):
        super().__init__(embeddings.space, metric, mode, seed, max_resample)
        self.embeddings = embeddings
        self.optimizer = optimizer
        self.num_initial = num_initial
        self.max_train = max_train
        self.warp = check_warp(warp)
        self.refit_until = refit_until
        self.refit_growth = refit_growth
        self._surrogate: GPSurrogate | None = None
        self._fitted_at = 0  # observations at the last hyper-parameter fit
        self.prior = None if prior is None else prior_scores(prior, embeddings)
        if local < 0 or local_every < 1:
            raise ValueError(f"local must be >= 0 and local_every >= 1, got {local} and {local_every}")
        self.local = local
        self.local_every = local_every
        self._neighbour_rows: dict[int, np.ndarray] = {}
        if dim is None:
            dim = (None if embeddings.vectors.shape[1] <= 32 else 16) if optimizer == "gp-ei" else 8
        self.points = reduce_vectors(embeddings.vectors, dim, seed)
        self.free = np.ones(len(embeddings), dtype=bool)
        self.budget = budget
        self.proposer = self._new_proposer()
        self.tokens: dict[str, tuple[Any, np.ndarray]] = {}  # trial id -> (ask token, point)
        self.told: list[tuple[np.ndarray, float]] = []  # what the proposer learnt, for restore

    # ------------------------------------------------------------------ proposals
    def _propose(self, trial_id: str) -> Arch | str:
        if not self.free.any():
            return FINISHED
        if self.proposer is not None:
            token, point = self.proposer.ask()
            self.tokens[trial_id] = (token, point)
            row = self._nearest_free(point)
        elif len(self.history) < self.num_initial:
            row = int(self.rng.choice(np.flatnonzero(self.free)))
        else:
            row = self._max_expected_improvement()
        return self.embeddings.archs[row]

    def _nearest_free(self, point: np.ndarray) -> int:
        candidates = np.flatnonzero(self.free)
        distance = ((self.points[candidates] - point) ** 2).sum(axis=1)
        return int(candidates[np.argmin(distance)])

    def _max_expected_improvement(self) -> int:
        rows, values = self._observed()
        candidates = np.flatnonzero(self.free)
        if len(rows) < 2:
            return int(self.rng.choice(candidates))
        if self.local and (len(rows) - self.num_initial) % self.local_every == 0:
            near = self._free_neighbours(rows[np.argsort(-values, kind="stable")[: self.local]])
            candidates = near if len(near) else candidates
        y = warped(values, self.warp)
        offset = np.zeros(len(self.points))
        if self.prior is not None:  # a linear prior mean a + b * prior, fitted to what was seen
            design = np.c_[np.ones(len(rows)), self.prior[rows]]
            a, b = np.linalg.lstsq(design, y, rcond=None)[0]
            offset = a + b * self.prior
        surrogate = self._fit_surrogate(self.points[rows], y - offset[rows])
        return int(candidates[np.argmax(surrogate.log_ei(self.points[candidates], y.max(), offset[candidates]))])

    def _free_neighbours(self, rows: np.ndarray) -> np.ndarray:
        """Free pool rows one move (the space's ``neighbors``) away from any of ``rows``."""
        near = []
        for row in rows.tolist():
            if row not in self._neighbour_rows:
                archs = [a for a in self.space.neighbors(self.embeddings.archs[row]) if a in self.embeddings]
                self._neighbour_rows[row] = np.unique(self.embeddings.rows(archs))
            near.append(self._neighbour_rows[row])
        near = np.unique(np.concatenate(near))
        return near[self.free[near]]

    def _fit_surrogate(self, X: np.ndarray, y: np.ndarray) -> GPSurrogate:
        n = len(y)
        reuse = self._surrogate is not None and n > self.refit_until and n < self._fitted_at * (1 + self.refit_growth)
        self._surrogate = GPSurrogate(max_train=self.max_train).fit(X, y, hyper_from=self._surrogate if reuse else None)
        if not reuse:
            self._fitted_at = n
        return self._surrogate

    def _observed(self) -> tuple[np.ndarray, np.ndarray]:
        """Pool rows and oriented scores of the finished evaluations that lie in the pool."""
        pairs = [(self.embeddings.index[a.key], self.score(v)) for a, v in self.history if a in self.embeddings]
        return np.array([r for r, _ in pairs], dtype=np.int64), np.array([v for _, v in pairs], dtype=np.float64)

    # ------------------------------------------------------------------ bookkeeping
    def _mark_seen_key(self, key: str) -> None:
        super()._mark_seen_key(key)
        row = self.embeddings.index.get(key)
        if row is not None:
            self.free[row] = False

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result, error)
        asked = self.tokens.pop(trial_id, None)
        if asked is not None:
            value = None if error else self._value(result)
            score = None if value is None else self.score(value)
            self.proposer.tell(asked[0], score)
            if score is not None:
                self.told.append((asked[1], score))

    def _new_proposer(self) -> Proposer | None:
        if self.optimizer == "gp-ei":
            return None
        lower, upper = self.points.min(axis=0), self.points.max(axis=0)
        return make_proposer(self.optimizer, lower, upper, self.seed, self.budget)

    def get_state(self) -> dict:
        return {**super().get_state(), "told": [(p.tolist(), v) for p, v in self.told]}

    def set_state(self, state: dict) -> None:
        """Rebuild the proposer and replay what it had learnt; trials pending at save time
        are finished by Tune's restore but are not told to the fresh proposer."""
        self.free[:] = True
        super().set_state(state)
        self.told = [(np.asarray(p), v) for p, v in state["told"]]
        self.proposer = self._new_proposer()
        self.tokens = {}
        for point, value in self.told:
            self.proposer.replay(point, value)


def prior_scores(prior: Any, embeddings: ArchEmbeddings) -> np.ndarray:
    """Normal scores of the ranks of ``prior`` over the pool (pool members it lacks get the
    median).  ``prior``: a Parquet path with ``arch`` and ``score`` columns, a mapping from
    arch strings (or canonical keys) to scores, or a fitted predictor (``predict(archs)``
    returning ``(mean, std)``, e.g. a :class:`~predictors.cg.CGPredictor` fitted on other
    spaces' benchmark tables)."""
    if hasattr(prior, "predict"):
        values = np.asarray(prior.predict(embeddings.archs)[0], dtype=np.float64)
    else:
        if isinstance(prior, (str, os.PathLike)):
            prior = _read_prior_table(prior)
        by_key = {}
        for text, score in dict(prior).items():
            key = text if text in embeddings.index else embeddings.space.parse(text).key
            by_key[key] = float(score)
        values = np.array([by_key.get(a.key, np.nan) for a in embeddings.archs])
    known = np.isfinite(values)
    if not known.any():
        raise ValueError("prior scores none of the embedded architectures")
    return normal_scores(np.where(known, values, np.median(values[known])))


def _read_prior_table(path: str | os.PathLike) -> dict[str, float]:
    table = read_parquet(path, "prior table", columns=("arch", "score"))
    return dict(zip(table.column("arch").to_pylist(), table.column("score").to_pylist()))


def load_embeddings(source: Any, space: Any) -> ArchEmbeddings:
    """``ArchEmbeddings`` from a table object, a Parquet path, or ``"one-hot"`` (every
    canonical class of a finite space, one-hot encoded: the encoding-dependent baseline)."""
    if isinstance(source, ArchEmbeddings):
        return source
    if source == "one-hot":
        return ArchEmbeddings.one_hot(space, list(dict.fromkeys(space.enumerate())))
    return ArchEmbeddings.from_parquet(source, space)
