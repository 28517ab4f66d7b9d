"""Bayesian optimisation over an embedded candidate pool: a GP on architecture embeddings.

raynas's own form of Hesslow & Poli's embedding BO (``preset="raynas"``, the default); the
method with the paper's settings is ``preset="paper"`` (:mod:`searchers.embedding_paper`).

The candidate pool is the set of embedded architectures.  A Matern-5/2 GP is fitted on the
embeddings of the evaluated architectures (values rank-warped, optionally around a prior mean
from knowledge gathered elsewhere), and the next architecture is the untried pool member of
highest expected improvement.  Nothing here reads the space's encoding, so the same searcher
works for every space whose architectures are embedded; ``local=1`` adds the one thing taken
from the space, its move set: EI is maximised over the neighbors of the best architecture
first.  (:mod:`searchers.embedding_pool` lets any other Tune searcher search the same pool.)
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from linear_operator.utils.errors import NotPSDError
from predictors.embeddings import ArchEmbeddings
from predictors.gp import GPSurrogate, check_warp, normal_scores, warped
from predictors.prior_mean import PriorScores, check_prior_weight, linear_prior_mean
from raynas.arch import Arch
from searchers.base import FINISHED
from searchers.pool import PoolSearcher


class EmbeddingGPSearcher(PoolSearcher):
    """GP expected improvement over the architectures of ``embeddings``, as a Tune ``Searcher``.

    Args:
        embeddings: the candidate pool and its vectors (:class:`ArchEmbeddings`).
        num_initial: random pool members evaluated before the GP takes over.
        dim: PCA dimensions the GP works in.  Default: embeddings of up to 32 dimensions
            (one-hot NB201 has 30) as they are, larger ones reduced to 16: a GP fitted on 100
            points cannot use 256 directions, and fitting in 16 is much faster.
        warp: ``"rank"`` fits the GP to the normal scores of the ranks of the values seen
            (a Gaussian copula), so a few collapsed architectures (NB201 has cells at 10%)
            do not flatten the surrogate around the good ones; ``"none"`` fits raw values.
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
            (``b`` -> 0).
        prior_weight: ``b`` is multiplied by this weight.  ``"auto"``: the prior's skill at
            ranking the better half of the observations
            (:func:`~predictors.prior_mean.prior_skill`: a prior can separate bad cells from
            good ones and still misrank the good ones, where the queries go; trusted there,
            it keeps the GP among its favourites).  ``1``: ``b`` as fitted.
        local: gp-ei maximises EI over the untried pool members one move (the space's
            ``neighbors``) away from the ``local`` best architectures seen, and over the whole
            pool only when none is left: the GP picks the order, the space's moves keep the
            late queries near the incumbent, where the global EI scatters them (BANANAS's
            mutation-based acquisition search, with the pool as its limit).  ``0``: EI over
            the whole pool.  The default, 1, is the setting that is at least REA at 25, 50
            and 100 queries on both NB201 columns measured (CIFAR-10, ImageNet16-120); EI over
            the whole pool falls behind REA on ImageNet16-120 (README).
        local_every: take the local step on every ``local_every``-th query only.
    """

    def __init__(
        self,
        embeddings: ArchEmbeddings,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        num_initial: int = 10,
        dim: int | None = None,
        max_train: int | None = 500,
        max_resample: int = 1000,
        warp: str = "rank",
        refit_until: int = 200,
        refit_growth: float = 0.1,
        prior: Any = None,
        local: int = 1,
        local_every: int = 1,
        prior_weight: float | str = "auto",
    ):
        if dim is None:
            dim = None if embeddings.dim <= 32 else 16
        super().__init__(embeddings, metric, mode, seed, dim, max_resample)
        self.num_initial = num_initial
        self.max_train = max_train
        self.warp = check_warp(warp)
        self.refit_until = refit_until
        self.refit_growth = refit_growth
        self._surrogate: GPSurrogate | None = None
        self._fitted_at = 0  # observations at the last hyper-parameter fit
        self.fit_failures_ = 0  # hyper-parameter fits that failed (each warned, the search went on)
        self.prior = None if prior is None else prior_scores(prior, embeddings)
        self.prior_weight = check_prior_weight(prior_weight)
        self.prior_weight_ = None  # the weight of the last step
        if local < 0 or local_every < 1:
            raise ValueError(f"local must be >= 0 and local_every >= 1, got {local} and {local_every}")
        self.local = local
        self.local_every = local_every
        self._neighbor_rows: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ proposals
    def _propose(self, trial_id: str) -> Arch | str:
        if not self.free.any():
            return FINISHED
        if len(self.history) < self.num_initial:
            row = self.random_free()
        else:
            row = self._max_expected_improvement()
        return self.embeddings.archs[row]

    def _max_expected_improvement(self) -> int:
        rows, values = self._observed()
        candidates = np.flatnonzero(self.free)
        if len(rows) < 2:
            return int(self.rng.choice(candidates))
        if self.local and (len(rows) - self.num_initial) % self.local_every == 0:
            near = self._free_neighbors(rows[np.argsort(-values, kind="stable")[: self.local]])
            candidates = near if len(near) else candidates
        y = warped(values, self.warp)
        offset = np.zeros(len(self.points))
        if self.prior is not None:
            intercept, slope, self.prior_weight_ = linear_prior_mean(self.prior[rows], y, self.prior_weight)
            offset = intercept + slope * self.prior
        surrogate = self._fit_surrogate(self.points[rows], y - offset[rows])
        try:
            log_ei = surrogate.log_ei(self.points[candidates], y.max(), offset[candidates])
        except NotPSDError as error:  # not even jitter made the covariance factorisable
            warnings.warn(f"GP posterior failed ({error}); this step takes a random candidate", RuntimeWarning)
            return int(self.rng.choice(candidates))
        return int(candidates[np.argmax(log_ei)])

    def _free_neighbors(self, rows: np.ndarray) -> np.ndarray:
        """Free pool rows one move (the space's ``neighbors``) away from any of ``rows``."""
        near = []
        for row in rows.tolist():
            if row not in self._neighbor_rows:
                archs = [a for a in self.space.neighbors(self.embeddings.archs[row]) if a in self.embeddings]
                self._neighbor_rows[row] = np.unique(self.embeddings.rows(archs))
            near.append(self._neighbor_rows[row])
        near = np.unique(np.concatenate(near))
        return near[self.free[near]]

    def _fit_surrogate(self, X: np.ndarray, y: np.ndarray) -> GPSurrogate:
        n = len(y)
        reuse = self._surrogate is not None and n > self.refit_until and n < self._fitted_at * (1 + self.refit_growth)
        surrogate = GPSurrogate(max_train=self.max_train).fit(
            X, y, hyper_from=self._surrogate if reuse else None, fallback=self._surrogate
        )
        self.fit_failures_ += surrogate.fit_failed_
        if not (reuse or surrogate.fit_failed_):  # after a failure the next step fits again
            self._fitted_at = n
        self._surrogate = surrogate
        return surrogate


def prior_scores(prior: Any, embeddings: ArchEmbeddings) -> np.ndarray:
    """Normal scores of the ranks of ``prior`` (:class:`~predictors.prior_mean.PriorScores`:
    a Parquet table, a mapping or a fitted predictor) over the pool; pool members it lacks
    get the median."""
    values = PriorScores(prior, embeddings.space)(embeddings.archs)
    known = np.isfinite(values)
    if not known.any():
        raise ValueError("prior scores none of the embedded architectures")
    return normal_scores(np.where(known, values, np.median(values[known])))


def load_embeddings(source: Any, space: Any) -> ArchEmbeddings:
    """``ArchEmbeddings`` from a table object, a Parquet path, or ``"one-hot"`` (every
    canonical class of a finite space, one-hot encoded: the encoding-dependent baseline)."""
    if isinstance(source, ArchEmbeddings):
        return source
    if source == "one-hot":
        return ArchEmbeddings.one_hot(space, list(dict.fromkeys(space.enumerate())))
    return ArchEmbeddings.from_parquet(source, space)
