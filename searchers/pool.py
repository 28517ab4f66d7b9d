"""The base of searchers whose candidates are the architectures of an embedding table.

The pool is fixed: its architectures, their vectors (rows scaled to unit length, PCA-reduced
to what the optimiser can use, each dimension to unit variance) and which are still free.
A proposal is a pool row; an architecture proposed, evaluated or warm-started is no longer free.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from predictors.embeddings import ArchEmbeddings, reduce_vectors
from searchers.base import ArchSearcher


class PoolSearcher(ArchSearcher):
    """An :class:`~searchers.base.ArchSearcher` over the architectures of ``embeddings``.

    Args:
        embeddings: the candidate pool and its vectors.
        dim: PCA dimensions of :attr:`points` (None: all).
        metric, mode, seed, max_resample: as for :class:`~searchers.base.ArchSearcher`.
    """

    def __init__(
        self,
        embeddings: ArchEmbeddings,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        dim: int | None = None,
        max_resample: int = 1000,
    ):
        super().__init__(embeddings.space, metric, mode, seed, max_resample)
        self.embeddings = embeddings
        self._dim, self._pca_seed = dim, seed
        self.free = np.ones(len(embeddings), dtype=bool)

    @cached_property
    def points(self) -> np.ndarray:
        """The pool's vectors as the optimiser sees them (computed when first used: a searcher
        of per-initialisation embeddings never reads them)."""
        return reduce_vectors(self.embeddings.vectors, self._dim, self._pca_seed)

    def random_free(self) -> int:
        """A random free pool row."""
        return int(self.rng.choice(np.flatnonzero(self.free)))

    def _observed(self) -> tuple[np.ndarray, np.ndarray]:
        """Pool rows and oriented scores of the finished evaluations that lie in the pool."""
        pairs = [(self.embeddings.index[a.key], self.score(v)) for a, v in self.history if a in self.embeddings]
        return np.array([r for r, _ in pairs], dtype=np.int64), np.array([v for _, v in pairs], dtype=np.float64)

    def _mark_seen_key(self, key: str) -> None:
        super()._mark_seen_key(key)
        row = self.embeddings.index.get(key)
        if row is not None:
            self.free[row] = False

    def set_state(self, state: dict) -> None:
        self.free[:] = True
        super().set_state(state)
