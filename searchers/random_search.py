"""Uniform random search over canonical architectures, with no repeats."""
from __future__ import annotations

from raynas.arch import Arch
from searchers.base import ArchSearcher


class RandomSearcher(ArchSearcher):
    """Samples the space uniformly and skips architectures equivalent to one already tried.

    Tune's own random search (``BasicVariantGenerator``) repeats equivalent cells and is not
    a ``Searcher``, so it cannot run in a plain benchmarking loop; this one does both.
    """

    def _propose(self, trial_id: str) -> Arch | str:
        return self.random_unseen()
