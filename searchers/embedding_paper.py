"""The embedding BO of Hesslow & Poli as published (``make_searcher("embedding-gp", preset="paper")``).

Their method, with their settings: a GP with a Matern-5/2 kernel of fixed lengthscale 1, unit
variance and noise variance 0.1 (no hyper-parameter fitting, zero prior mean, raw values), fitted
on one point per random initialisation of each evaluated architecture (its embedding under that
initialisation, labelled with the architecture's value); after 5 random architectures, each step
draws 20 untried candidates uniformly, averages each one's predicted mean and variance over its
initialisations, and takes the candidate of highest expected improvement over the incumbent plus
0.15 (in the metric's units: the paper's are accuracy percentages).

raynas's default ``embedding-gp`` (:mod:`searchers.embedding`) differs from this on purpose: it fits
the GP's hyper-parameters, rank-warps the values, works on the mean embedding reduced by PCA and
scores the whole untried pool, so it needs no setting tuned to one metric's scale.
"""
from __future__ import annotations

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern

from predictors.embeddings import ArchEmbeddings
from predictors.gp import log_expected_improvement
from raynas.arch import Arch
from searchers.base import FINISHED
from searchers.pool import PoolSearcher


class PublishedEmbeddingGPSearcher(PoolSearcher):
    """GP expected improvement on per-initialisation embeddings, as published.

    Args:
        embeddings: the pool; its ``per_init`` vectors (``raynas embed`` writes them) are the
            GP's inputs.  A table without them (one-hot, a CG embedding) gives one point per
            architecture, its vector.
        num_initial: random architectures before the GP takes over (published: 5).
        num_candidates: untried architectures drawn uniformly and scored per step (20).
        lengthscale, noise: the fixed Matern-5/2 lengthscale and noise variance (1, 0.1).
        ei_offset: added to the incumbent in expected improvement (0.15, metric units).
    """

    def __init__(
        self,
        embeddings: ArchEmbeddings,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        num_initial: int = 5,
        num_candidates: int = 20,
        lengthscale: float = 1.0,
        noise: float = 0.1,
        ei_offset: float = 0.15,
        max_resample: int = 1000,
    ):
        super().__init__(embeddings, metric, mode, seed, None, max_resample)
        for name, value in {"num_candidates": num_candidates, "lengthscale": lengthscale, "noise": noise}.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if num_initial < 0:
            raise ValueError(f"num_initial must be >= 0, got {num_initial!r}")
        self.num_initial = num_initial
        self.num_candidates = int(num_candidates)
        self.lengthscale, self.noise, self.ei_offset = float(lengthscale), float(noise), float(ei_offset)
        vectors = embeddings.per_init if embeddings.per_init is not None else embeddings.vectors[:, None, :]
        self.inits = vectors  # archs x inits x dim, as the encoder gave them

    def _propose(self, trial_id: str) -> Arch | str:
        free = np.flatnonzero(self.free)
        if not len(free):
            return FINISHED
        rows, values = self._observed()
        if len(rows) < max(self.num_initial, 1):
            return self.embeddings.archs[self.random_free()]
        candidates = self.rng.choice(free, size=min(self.num_candidates, len(free)), replace=False)
        mean, std = self._predict(rows, values, candidates)
        log_ei = log_expected_improvement(mean, std, values.max() + self.ei_offset)
        return self.embeddings.archs[int(candidates[np.argmax(log_ei)])]

    def _predict(self, rows: np.ndarray, values: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of each candidate, its initialisations' averaged."""
        inits, dim = self.inits.shape[1:]
        seen = self.inits[rows].reshape(-1, dim).astype(np.float64)
        new = self.inits[candidates].reshape(-1, dim).astype(np.float64)
        gp = GaussianProcessRegressor(
            Matern(self.lengthscale, length_scale_bounds="fixed", nu=2.5), alpha=self.noise, optimizer=None
        ).fit(seen, np.repeat(values, inits))
        mean, std = gp.predict(new, return_std=True)
        variance = (std**2 + self.noise).reshape(len(candidates), inits).mean(axis=1)  # with the noise, as GPy predicts
        return mean.reshape(len(candidates), inits).mean(axis=1), np.sqrt(variance)
