"""Predictor-guided regularized evolution: REA whose children are chosen by a predictor.

Each step draws ``num_candidates`` children, each an unseen mutation of a tournament
winner of the regularized-evolution population, and evaluates the one a performance
predictor rates best: the highest predicted mean, or with ``beta > 0`` the highest upper
confidence bound ``mean + beta * std`` (``-mean + beta * std`` when minimising).  The
predictor is re-fitted online on the finished evaluations every ``refit_every`` results;
until ``num_initial`` results have arrived the searcher samples unseen architectures at
random, as REA does while its population fills.

Any :class:`~predictors.base.Predictor` works (a zero-cost proxy, the CG predictor, ...).
The default is :class:`~predictors.embedding_gp.EmbeddingGPPredictor` on the space's config
one-hot encoded, or on an embedding table (``embeddings=``, e.g. Jacobian embeddings), in which
case candidates are drawn from the table's architectures.  A predictor transferred from other
spaces (``prior=``: a fitted CG predictor or its saved directory) becomes the default GP's
prior mean (:mod:`predictors.prior_mean`): it ranks the first children before any target
label exists, and the refits on the search's results learn its residual instead of
replacing it, so the source labels it learned from are never dropped.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from predictors.base import check_predictor
from predictors.embedding_gp import EmbeddingGPPredictor
from predictors.embeddings import ArchEmbeddings
from raynas.arch import Arch
from search_spaces import SearchSpace
from searchers.evolution import RegularizedEvolution


class PredictorEvolutionSearcher(RegularizedEvolution):
    """Regularized evolution with a predictor picking among ``num_candidates`` children.

    Args:
        predictor: object with ``fit(archs, y) -> self`` and ``predict(archs) -> (mean, std)``,
            ``y`` and ``mean`` in the metric's own units.  Default: a GP in the metric's units
            (:class:`~predictors.embedding_gp.EmbeddingGPPredictor`) on ``embeddings`` if
            given, else on the one-hot config encoding.
        embeddings: an :class:`ArchEmbeddings` table for the default GP; candidates and
            random picks then come from its architectures.  Not together with ``predictor``.
        prior, prior_weight: knowledge from other spaces for the default GP's prior mean (see
            :class:`~predictors.embedding_gp.EmbeddingGPPredictor`).  Not together with ``predictor``.
        num_candidates: children drawn per step (each from its own tournament).
        beta: weight of the predicted std (0: greedy on the mean; > 0: UCB).
        num_initial: results gathered (random unseen archs) before the predictor is used.
        refit_every: re-fit the predictor after this many new results (1: every result).
        max_train: fit on at most the ``max_train`` best results, bounding the cost per fit.
        population_size, sample_size, max_mutations, max_resample, constraint: as in
            :class:`~searchers.evolution.RegularizedEvolution`.
    """

    def __init__(
        self,
        space: SearchSpace | str,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        predictor: Any = None,
        embeddings: ArchEmbeddings | None = None,
        num_candidates: int = 20,
        beta: float = 1.0,
        num_initial: int = 10,
        refit_every: int = 1,
        max_train: int | None = 500,
        population_size: int = 10,
        sample_size: int = 3,
        max_mutations: int = 100,
        max_resample: int = 1000,
        prior: Any = None,
        prior_weight: float | str = "auto",
        constraint: Callable[[Arch], bool] | None = None,
    ):
        _check_int("num_candidates", num_candidates, 1)
        _check_int("num_initial", num_initial, 0)
        _check_int("refit_every", refit_every, 1)
        if max_train is not None:
            _check_int("max_train", max_train, 2)
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0 (0: greedy on the predicted mean), got {beta!r}")
        if predictor is not None and (embeddings is not None or prior is not None):
            raise ValueError("pass either predictor= or embeddings= / prior= (options of the default GP), not both")
        if predictor is not None:
            check_predictor(predictor, "archs")
        if embeddings is not None and not isinstance(embeddings, ArchEmbeddings):
            raise ValueError(f"embeddings must be an ArchEmbeddings table or None, got {type(embeddings).__name__}")
        super().__init__(space, metric, mode, seed, population_size, sample_size, max_mutations, max_resample, constraint)
        if embeddings is not None and embeddings.space.name != self.space.name:
            raise ValueError(f"embeddings are of space {embeddings.space.name!r}, the searcher's is {self.space.name!r}")
        if predictor is None and num_initial < 2:
            raise ValueError(f"the default GP needs num_initial >= 2 results to fit, got {num_initial}")
        self.embeddings = embeddings
        if predictor is None:
            vectors = self.space if embeddings is None else embeddings
            predictor = EmbeddingGPPredictor(vectors, dim=None, warp="none", max_train=500, prior=prior,
                                             prior_weight=prior_weight)  # fmt: skip
        self.predictor = predictor
        self.num_candidates = num_candidates
        self.beta = float(beta)
        self.num_initial = num_initial
        self.refit_every = refit_every
        self.max_train = max_train
        self._fitted_at: int | None = None  # len(history) at the last fit; None: not fitted

    # ------------------------------------------------------------------ proposals
    def _propose(self, trial_id: str) -> Arch | str:
        if len(self.population) < self.population_size or len(self.history) < self.num_initial:
            return self._first_pick()
        candidates = self._candidates()
        if not candidates:
            return self.random_unseen()
        if len(candidates) == 1 or not self._refit():
            return candidates[0]
        mean, std = self.predictor.predict(candidates)
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        if mean.shape != (len(candidates),) or std.shape != mean.shape:
            raise ValueError(
                f"{type(self.predictor).__name__}.predict must return (mean, std) of shape ({len(candidates)},); "
                f"got {mean.shape} and {std.shape}"
            )
        gain = (mean if self._mode == "max" else -mean) + self.beta * std
        return candidates[int(np.argmax(np.nan_to_num(gain, nan=-np.inf)))]

    def _first_pick(self) -> Arch | str:
        """Before the GP has labels: a random unseen architecture, or with a transferred
        prior the one it scores best among ``num_candidates`` random unseen ones (the prior
        scores the metric itself: higher is better when maximising)."""
        prior = getattr(self.predictor, "prior", None)
        if prior is None or self.num_candidates == 1:
            return self.random_unseen()
        drawn: dict[str, Arch] = {}
        for _ in range(3 * self.num_candidates):
            arch = self.random_unseen()
            if isinstance(arch, str):  # FINISHED
                return arch
            drawn.setdefault(arch.key, arch)
            if len(drawn) == self.num_candidates:
                break
        archs = list(drawn.values())
        scores = np.nan_to_num(prior(archs), nan=-np.inf if self._mode == "max" else np.inf)
        return archs[int(np.argmax(scores) if self._mode == "max" else np.argmin(scores))]

    def _candidates(self) -> list[Arch]:
        """Up to ``num_candidates`` distinct unseen children of tournament winners (in the
        embedding table, when there is one); fewer once a winner's mutations run out."""
        children: dict[str, Arch] = {}
        for _ in range(self.num_candidates):
            child = self._mutant(self._tournament(), children)
            if child is None:
                break
            children[child.key] = child
        return list(children.values())

    def _refit(self) -> bool:
        """Fit the predictor if ``refit_every`` results arrived since the last fit; whether
        it is usable (it has been fitted on something)."""
        if self._fitted_at is not None and len(self.history) - self._fitted_at < self.refit_every:
            return True
        data = [(a, v) for a, v in self.history if self._in_table(a)]
        if len(data) < max(self.num_initial, 1):
            return self._fitted_at is not None
        if self.max_train is not None and len(data) > self.max_train:
            data = sorted(data, key=lambda item: self.score(item[1]), reverse=True)[: self.max_train]
        self.predictor.fit([a for a, _ in data], np.array([v for _, v in data], dtype=np.float64))
        self._fitted_at = len(self.history)
        return True

    def _in_table(self, arch: Arch) -> bool:
        """In the embedding table, when there is one (the default GP must encode it)."""
        return self.embeddings is None or arch in self.embeddings

    def _admissible(self, arch: Arch) -> bool:
        return self._in_table(arch) and super()._admissible(arch)

    def random_unseen(self) -> Arch | str:
        """A random unseen admissible architecture of the embedding table while it has any,
        else of the space."""
        if self.embeddings is not None:
            for row in self.rng.permutation(len(self.embeddings)):
                arch = self.embeddings.archs[row]
                if self.is_unseen(arch) and super()._admissible(arch):
                    return arch
        return super().random_unseen()

    # ------------------------------------------------------------------ state
    def set_state(self, state: dict) -> None:
        """The predictor is not saved: it is re-fitted on the restored history when next used."""
        super().set_state(state)
        self._fitted_at = None


def _check_int(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")

