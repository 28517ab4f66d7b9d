"""Search over a supernet's sub-nets given any scorer (architecture texts -> accuracies):
random search and regularized evolution, shared by the Ray-task search of
:mod:`raynas.trainables.supernet_search` and the in-process search a supernet trial runs
after its last epoch (this module imports no supernet code, so both can use it)."""
from __future__ import annotations

from typing import Callable, Mapping

from raynas.arch import Arch
from search_spaces import SearchSpace
from searchers.base import FINISHED
from searchers.evolution import RegularizedEvolution

Scored = tuple[Arch, float]
Scorer = Callable[[list[str]], list[float]]


def top_scored(scored: Mapping[Arch, float], top_k: int) -> list[Scored]:
    """The ``top_k`` best of ``scored``, best first."""
    return sorted(scored.items(), key=lambda item: -item[1])[:top_k]


def evolve(
    space: SearchSpace,
    score: Scorer,
    num_samples: int,
    population_size: int,
    sample_size: int,
    batch_size: int,
    seed: int,
) -> dict[Arch, float]:
    """Regularized evolution (:class:`~searchers.evolution.RegularizedEvolution`, the searcher
    Tune runs) scored by ``score``, ``batch_size`` children per call; every distinct
    architecture seen (``num_samples`` at most) with its score."""
    if batch_size < 1 or num_samples < population_size:
        raise ValueError(f"need batch_size >= 1 and num_samples >= population_size, got {batch_size} and {num_samples}")
    searcher = RegularizedEvolution(space, "val_acc", "max", seed, population_size, sample_size)
    seen: dict[Arch, float] = {}
    while len(seen) < num_samples:
        trials: dict[str, Arch] = {}
        for _ in range(min(batch_size, num_samples - len(seen))):
            trial_id = str(len(seen) + len(trials))
            config = searcher.suggest(trial_id)
            if config is None or config == FINISHED:
                break
            trials[trial_id] = space.decode(config)
        if not trials:
            break
        scores = score([str(a) for a in trials.values()])
        for (trial_id, arch), value in zip(trials.items(), scores):
            searcher.on_trial_complete(trial_id, {"val_acc": value})
            seen[arch] = value
    return seen


def search_subnets(
    space: SearchSpace, score: Scorer, method: str, num_samples: int, top_k: int = 1, seed: int = 0
) -> list[Scored]:
    """``method`` "random" (``num_samples`` distinct random architectures) or "evolution"
    (regularized evolution over ``num_samples`` distinct ones, population 20, tournament 5,
    10 children per call); the ``top_k`` best by ``score``, best first."""
    if method == "random":
        archs = space.sample_unique(num_samples, seed)
        return top_scored(dict(zip(archs, score([str(a) for a in archs]))), top_k)
    if method != "evolution":
        raise ValueError(f"sub-net search {method!r} is not allowed; allowed: ['random', 'evolution']")
    population = min(20, num_samples)
    return top_scored(evolve(space, score, num_samples, population, min(5, population), 10, seed), top_k)
