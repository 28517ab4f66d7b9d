"""``make_searcher(name, space, metric, mode, seed, **kw)``: a name -> factory registry."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from ray.tune.search import Searcher

from search_spaces import SearchSpace, get_space

Factory = Callable[..., Searcher]
_SEARCHERS: dict[str, Factory] = {}


def register_searcher(name: str) -> Callable[[Factory], Factory]:
    """Decorator: ``factory(space, metric, mode, seed, **kw) -> Searcher`` under ``name``."""

    def deco(factory: Factory) -> Factory:
        if name in _SEARCHERS:
            raise ValueError(f"searcher {name!r} is already registered")
        _SEARCHERS[name] = factory
        return factory

    return deco


def make_searcher(
    name: str,
    space: SearchSpace | str,
    metric: str | None = "val_acc",
    mode: str | None = "max",
    seed: int | None = None,
    **kw: Any,
) -> Searcher:
    """A Tune search algorithm over ``space`` that never repeats a canonical architecture."""
    try:
        factory = _SEARCHERS[name]
    except KeyError:
        raise ValueError(f"unknown searcher {name!r}; available: {available_searchers()}") from None
    space = get_space(space) if isinstance(space, str) else space
    if not kw:
        return factory(space, metric, mode, seed)
    try:
        return factory(space, metric, mode, seed, **kw)
    except TypeError as err:  # an unknown option name, or an option of the wrong type (text from the CLI)
        raise ValueError(f"searcher {name!r} cannot take options {kw}: {err}") from err


def available_searchers() -> list[str]:
    return sorted(_SEARCHERS)


@register_searcher("random")
def _random(space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, **kw: Any) -> Searcher:
    from searchers.random_search import RandomSearcher

    return RandomSearcher(space, metric, mode, seed, **kw)


@register_searcher("rea")
def _rea(space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, **kw: Any) -> Searcher:
    from searchers.evolution import RegularizedEvolution

    return RegularizedEvolution(space, metric, mode, seed, **kw)


@register_searcher("predictor-rea")
def _predictor_rea(
    space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, embeddings: Any = None, **kw: Any
) -> Searcher:
    """REA whose children a predictor picks; ``embeddings`` may be a table, a Parquet path or "one-hot"."""
    from searchers.predictor_evolution import PredictorEvolutionSearcher

    if embeddings is not None:
        from searchers.embedding import load_embeddings

        embeddings = load_embeddings(embeddings, space)
    return PredictorEvolutionSearcher(space, metric, mode, seed, embeddings=embeddings, **kw)


@register_searcher("tpe")
def _tpe(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    n_startup_jobs: int = 20,
    gamma: float = 0.25,
    n_EI_candidates: int = 24,
    **kw: Any,
) -> Searcher:
    """Tune's HyperOptSearch (TPE) on the space's flat domains.

    ``n_startup_jobs`` (random trials before TPE models anything), ``gamma`` (the quantile
    of trials counted as good) and ``n_EI_candidates`` (draws from the good-trial density
    scored by expected improvement) go to ``hyperopt.tpe.suggest`` itself: HyperOptSearch
    forwards the first two only, so its ``algo`` is replaced by a partial with all three.
    """
    from hyperopt import tpe
    from ray.tune.search.hyperopt import HyperOptSearch

    from searchers.unique import UniqueArchSearcher

    if not (isinstance(n_startup_jobs, int) and n_startup_jobs >= 0):
        raise ValueError(f"n_startup_jobs must be an int >= 0, got {n_startup_jobs!r}")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    if not (isinstance(n_EI_candidates, int) and n_EI_candidates >= 1):
        raise ValueError(f"n_EI_candidates must be an int >= 1, got {n_EI_candidates!r}")
    inner = HyperOptSearch(space=space.tune_space(), metric=metric, mode=mode, random_state_seed=seed)
    inner.algo = partial(tpe.suggest, n_startup_jobs=n_startup_jobs, gamma=gamma, n_EI_candidates=n_EI_candidates)
    return UniqueArchSearcher(inner, space, metric, mode, seed, **kw)


@register_searcher("nevergrad")
def _nevergrad(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    optimizer: str = "NGOpt",
    budget: int = 1000,
    **kw: Any,
) -> Searcher:
    """Tune's NevergradSearch; NGOpt picks its algorithm from the ``budget`` it is told."""
    import nevergrad as ng
    import numpy as np
    from ray.tune.search.nevergrad import NevergradSearch

    from searchers.unique import UniqueArchSearcher

    if not (isinstance(budget, int) and budget >= 1):
        raise ValueError(f"budget must be an int >= 1, got {budget!r}")
    if optimizer not in ng.optimizers.registry:
        raise ValueError(f"unknown nevergrad optimizer {optimizer!r}; e.g. NGOpt, OnePlusOne, DE, PortfolioDiscreteOnePlusOne")
    parametrization = NevergradSearch.convert_search_space(space.tune_space())
    parametrization.random_state = np.random.RandomState(seed)
    inner = NevergradSearch(
        optimizer=ng.optimizers.registry[optimizer],
        optimizer_kwargs={"budget": budget},
        space=parametrization,
        metric=metric,
        mode=mode,
    )
    return UniqueArchSearcher(inner, space, metric, mode, seed, **kw)


@register_searcher("ax")
def _ax(space: SearchSpace, metric: Any, mode: Any, seed: int | None, **kw: Any) -> Searcher:
    from searchers.ax_searcher import AxSearcher

    return AxSearcher(space, metric, mode, seed, **kw)


def _embedding_factory(optimizer: str) -> Factory:
    """A registry entry running ``optimizer`` in an embedding space."""

    def factory(
        space: SearchSpace,
        metric: str | None,
        mode: str | None,
        seed: int | None,
        embeddings: Any = "one-hot",
        **kw: Any,
    ) -> Searcher:
        from searchers.embedding import EmbeddingSearcher, load_embeddings

        return EmbeddingSearcher(load_embeddings(embeddings, space), optimizer, metric, mode, seed, **kw)

    return factory


for _name, _optimizer in {
    "embedding-gp": "gp-ei",
    "embedding-ngopt": "nevergrad:NGOpt",
    "embedding-tpe": "hyperopt:tpe",
    "embedding-ax": "ax",
}.items():
    register_searcher(_name)(_embedding_factory(_optimizer))
