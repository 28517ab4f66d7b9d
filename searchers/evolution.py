"""Regularized evolution (Real et al., 2019): the baseline every NAS paper compares to.

A population of the ``population_size`` most recently evaluated architectures; each step
picks the best of ``sample_size`` random members (tournament) and mutates it with the
space's own ``mutate``.  Ageing (the oldest member dies, not the worst) is what makes it
"regularized".  Asynchronous by construction, so it runs unchanged with Tune's concurrency.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Container

from raynas.arch import Arch
from search_spaces import SearchSpace
from searchers.base import ArchSearcher


class RegularizedEvolution(ArchSearcher):
    """REA as a Tune ``Searcher``.

    Args:
        population_size: evaluated architectures kept alive (oldest dies first).
        sample_size: tournament size; larger means greedier.
        max_mutations: mutations of one parent tried for an unseen child before falling
            back to a random unseen architecture.
        constraint: ``constraint(arch) -> bool``; only architectures it admits are proposed
            (e.g. :class:`~searchers.constraints.ParamBudget`).  Checked at construction: a
            constraint no random architecture meets fails then, not in the first trial.
    """

    def __init__(
        self,
        space: SearchSpace | str,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        population_size: int = 10,
        sample_size: int = 3,
        max_mutations: int = 100,
        max_resample: int = 1000,
        constraint: Callable[[Arch], bool] | None = None,
    ):
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be in [1, population_size={population_size}], got {sample_size}"
            )
        super().__init__(space, metric, mode, seed, max_resample)
        self.population_size = population_size
        self.sample_size = sample_size
        self.max_mutations = max_mutations
        self.population: deque[tuple[Arch, float]] = deque(maxlen=population_size)
        self.constraint = constraint
        if constraint is not None and not any(constraint(self.space.sample(self.rng)) for _ in range(max_resample)):
            raise ValueError(f"no architecture of {self.space.name} in {max_resample} random draws meets the constraint "
                             f"({constraint}); loosen it")  # fmt: skip

    def _propose(self, trial_id: str) -> Arch | str:
        if len(self.population) < self.population_size:
            return self.random_unseen()
        child = self._mutant(self._tournament())
        return self.random_unseen() if child is None else child

    def _tournament(self) -> Arch:
        """The best of ``sample_size`` distinct random population members."""
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        return max((self.population[i] for i in picks), key=lambda item: self.score(item[1]))[0]

    def _mutant(self, parent: Arch, taken: Container[str] = ()) -> Arch | None:
        """An unseen, admissible mutation of ``parent`` whose key is not in ``taken``,
        within ``max_mutations`` tries, else None."""
        for _ in range(self.max_mutations):
            child = self.space.mutate(parent, self.rng)
            if self.is_unseen(child) and child.key not in taken and self._admissible(child):
                return child
        return None

    def _admissible(self, child: Arch) -> bool:
        """Whether ``child`` may be proposed: it meets the constraint, if there is one."""
        return self.constraint is None or self.constraint(child)

    def random_unseen(self) -> Arch | str:
        """A random unseen architecture that meets the constraint (``max_resample`` draws)."""
        for _ in range(self.max_resample if self.constraint is not None else 1):
            arch = super().random_unseen()
            if isinstance(arch, str) or self._admissible(arch):  # str: FINISHED
                return arch
        raise RuntimeError(f"no unseen architecture meeting the constraint ({self.constraint}) in {self.max_resample} draws")

    def _observe(self, arch: Arch, value: float) -> None:
        self.population.append((arch, value))

    def get_state(self) -> dict:
        return {**super().get_state(), "population": [(a.text, v) for a, v in self.population]}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.population = deque(
            ((self.space.parse(s), v) for s, v in state["population"]), maxlen=self.population_size
        )
