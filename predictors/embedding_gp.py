"""A GP fitted on the embeddings of a few labelled architectures of one space.

The CG predictor transfers what other spaces' labels teach; a GP on the target space's own
Jacobian embeddings learns only from its labels, and the two make different mistakes.
Stacked (:class:`~predictors.stacking.StackedPredictor`, equal weights), they rank better
than either.  All 8,765 NB201 classes, 100 labels, 3 seeds: CG 0.876; GP on the embeddings
of synthetic inputs through C=16 N=2 networks 0.881, stacked **0.920**; GP on the cheaper
digits C=8 N=1 embeddings 0.814, stacked 0.894.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from predictors.embeddings import ArchEmbeddings, reduce_vectors
from predictors.gp import GPSurrogate, check_warp, warped
from raynas.arch import Arch


class EmbeddingGPPredictor:
    """``fit(archs, y)`` / ``predict(archs) -> (mean, std)`` for architectures of ``embeddings``.

    Args:
        embeddings: vectors of every architecture to be fitted or predicted.
        dim: PCA dimensions (as the embedding searcher: a GP on ~100 points cannot use 256).
        warp: fit the normal scores of the label ranks (``"rank"``, predictions are then in
            those units: fine for ranking and stacking) or the labels themselves (``"none"``).
    """

    def __init__(self, embeddings: ArchEmbeddings, dim: int | None = 16, warp: str = "rank", seed: int = 0):
        self.embeddings, self.warp = embeddings, check_warp(warp)
        self.points = reduce_vectors(embeddings.vectors, dim if dim and dim < embeddings.dim else None, seed)
        self.gp_: GPSurrogate | None = None

    def fit(self, archs: Sequence[Arch], y: Sequence[float], **_: object) -> "EmbeddingGPPredictor":
        self.gp_ = GPSurrogate(max_train=None).fit(self._rows(archs), warped(y, self.warp))
        return self

    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        if self.gp_ is None:
            raise RuntimeError("EmbeddingGPPredictor is not fitted: call fit(archs, y) first")
        return self.gp_.predict(self._rows(archs))

    def _rows(self, archs: Sequence[Arch]) -> np.ndarray:
        missing = [a for a in archs if a not in self.embeddings]
        if missing:
            raise KeyError(f"{len(missing)} architectures have no embedding in this table, e.g. {missing[0]}")
        return self.points[self.embeddings.rows(archs)]
