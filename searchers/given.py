"""The architectures a user names, in order: what ``raynas train`` retrains and what
``--searcher given --searcher-opt archs=[...]`` evaluates."""
from __future__ import annotations

from typing import Sequence

from raynas.arch import Arch
from search_spaces import SearchSpace
from searchers.base import FINISHED, ArchSearcher


class GivenSearcher(ArchSearcher):
    """Proposes ``archs`` (strings or :class:`Arch`) one per trial, in order, then finishes.

    Equivalent architectures are trained once (the first spelling is kept); a string that is
    not an architecture of the space is named when the searcher is made, in the driver.
    """

    def __init__(
        self,
        space: SearchSpace | str,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        archs: Sequence[str | Arch] = (),
    ):
        super().__init__(space, metric, mode, seed)
        if isinstance(archs, (str, Arch)) or not archs:
            raise ValueError(f"archs must be a non-empty list of {self.space.name} architectures, got {archs!r}")
        self.archs = self.space.as_unique_archs(archs)

    def _propose(self, trial_id: str) -> Arch | str:
        return next((a for a in self.archs if self.is_unseen(a)), FINISHED)
