"""A GP over the architectures of one space, on vectors that describe them.

The vectors are an embedding table's (e.g. Jacobian embeddings: rows scaled to unit length,
PCA-reduced, as the embedding searcher uses them) or the space's own config, one-hot encoded
(computed on demand, so any architecture of the space can be fitted or predicted).  This is
the one GP predictor of raynas: predictor-guided evolution's default predictor, and a
learning member of :class:`~predictors.stacking.StackedPredictor` beside the CG predictor
(they make different mistakes, so the stack ranks better than either).

With ``prior=`` (e.g. a CG predictor fitted on other spaces) the GP models the residual of a
linear prior mean (:mod:`predictors.prior_mean`): refits on target labels keep what the
prior learned from its source labels, weighted by how well it ranks the labels seen.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from predictors.embeddings import ArchEmbeddings, reduce_vectors
from predictors.gp import GPSurrogate, check_warp, warped
from predictors.prior_mean import PriorScores, check_prior_weight, linear_prior_mean
from raynas.arch import Arch
from search_spaces import SearchSpace


class EmbeddingGPPredictor:
    """``fit(archs, y)`` / ``predict(archs) -> (mean, std)`` with a Matern GP on architecture vectors.

    Args:
        embeddings: an embedding table holding every architecture to be fitted or predicted,
            or a search space, whose one-hot config encoding is used.
        dim: PCA dimensions of a table's vectors (a GP on ~100 points cannot use 256); None
            keeps them all.  One-hot vectors are used as they are.
        warp: fit the normal scores of the label ranks (``"rank"``; predictions are then in
            those units: fine for ranking and stacking) or the labels themselves (``"none"``).
        max_train: fit on at most this many best labels (None: all).
        nu, ard: the Matern kernel's smoothness and per-dimension length-scales.
        seed: the PCA's seed.
        prior: knowledge from elsewhere (:class:`~predictors.prior_mean.PriorScores`: a fitted
            predictor, a Parquet table or a mapping of scores) as the GP's prior mean.
        prior_weight: ``"auto"`` (the prior's skill on the better half of the labels) or a
            number in [0, 1] multiplying its fitted slope.
    """

    def __init__(
        self,
        embeddings: ArchEmbeddings | SearchSpace,
        dim: int | None = 16,
        warp: str = "rank",
        max_train: int | None = None,
        nu: float = 2.5,
        ard: bool = False,
        seed: int = 0,
        prior: Any = None,
        prior_weight: float | str = "auto",
    ):
        self.embeddings, self.warp = embeddings, check_warp(warp)
        self.prior_weight = check_prior_weight(prior_weight)
        self.max_train, self.nu, self.ard = max_train, nu, ard
        if isinstance(embeddings, ArchEmbeddings):
            self.space = embeddings.space
            self.points = reduce_vectors(embeddings.vectors, dim if dim and dim < embeddings.dim else None, seed)
        else:
            self.space, self.points = embeddings, None
        self._one_hot: dict[str, np.ndarray] = {}  # canonical key -> one-hot vector
        self.prior = None if prior is None else PriorScores(prior, self.space)
        self.prior_mean_ = (0.0, 0.0, 0.0)  # intercept, slope, weight of the last fit
        self._prior_fill = 0.0  # the score of architectures a prior table lacks
        self.gp_: GPSurrogate | None = None

    def fit(self, archs: Sequence[Arch], y: Sequence[float], **_: object) -> "EmbeddingGPPredictor":
        archs, target = list(archs), warped(y, self.warp)
        if self.prior is not None:
            scores = self.prior(archs)
            known = scores[np.isfinite(scores)]
            if not len(known):
                raise ValueError(f"the prior scores none of the {len(archs)} architectures to fit (keys of another space?)")
            self._prior_fill = float(np.median(known))
            scores = np.nan_to_num(scores, nan=self._prior_fill)
            self.prior_mean_ = linear_prior_mean(scores, target, self.prior_weight)
            target = target - self._offset(scores)
        self.gp_ = GPSurrogate(self.nu, self.ard, self.max_train).fit(self.vectors(archs), target)
        return self

    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        if self.gp_ is None:
            raise RuntimeError("EmbeddingGPPredictor is not fitted: call fit(archs, y) first")
        mean, std = self.gp_.predict(self.vectors(archs))
        if self.prior is not None:
            mean = mean + self._offset(np.nan_to_num(self.prior(archs), nan=self._prior_fill))
        return mean, std

    def _offset(self, scores: np.ndarray) -> np.ndarray:
        """The prior mean at architectures of these prior scores."""
        intercept, slope, _ = self.prior_mean_
        return intercept + slope * scores

    def vectors(self, archs: Sequence[Arch]) -> np.ndarray:
        """The GP's input rows for ``archs``."""
        archs = list(archs)
        if self.points is not None:
            missing = [a for a in archs if a not in self.embeddings]
            if missing:
                raise KeyError(f"{len(missing)} architectures have no embedding in this table, e.g. {missing[0]}")
            return self.points[self.embeddings.rows(archs)]
        new = [a for a in dict.fromkeys(archs) if a.key not in self._one_hot]
        if new:
            table = ArchEmbeddings.one_hot(self.space, new)
            self._one_hot.update(zip((a.key for a in table.archs), table.vectors))
        return np.stack([self._one_hot[a.key] for a in archs])
