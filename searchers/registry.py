"""``make_searcher(name, space, metric, mode, seed, **kw)``: a name -> factory registry.

A factory may declare which facts of the experiment it uses (``uses``): ``budget`` (the
number of trials; NGOpt picks its method from it), ``objectives`` (every objective of a
multi-objective search; the others search the first) and ``model`` (the shape of the
networks the trials build, ``num_classes``, ``in_shape`` and ``build``: what a parameter
budget, ``max_params``, counts).  ``make_searcher`` passes them to the
factories that declared them, unless the caller's options set them already.
"""
from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from search_spaces import SearchSpace, as_space

if TYPE_CHECKING:  # the factories import Tune's searchers when called: listing names needs no Ray Tune
    from ray.tune.search import Searcher

Factory = Callable[..., "Searcher"]
_SEARCHERS: dict[str, Factory] = {}
_USES: dict[str, tuple[str, ...]] = {}
#: experiment facts a factory may declare it uses
EXPERIMENT_FACTS = ("budget", "objectives", "model")


def register_searcher(name: str, uses: tuple[str, ...] = ()) -> Callable[[Factory], Factory]:
    """Decorator: ``factory(space, metric, mode, seed, **kw) -> Searcher`` under ``name``;
    ``uses``: the experiment facts (:data:`EXPERIMENT_FACTS`) it takes as keyword options."""
    if set(uses) - set(EXPERIMENT_FACTS):
        raise ValueError(f"uses must name experiment facts among {EXPERIMENT_FACTS}, got {uses}")

    def deco(factory: Factory) -> Factory:
        if name in _SEARCHERS:
            raise ValueError(f"searcher {name!r} is already registered")
        _SEARCHERS[name] = factory
        _USES[name] = tuple(uses)
        return factory

    return deco


def make_searcher(
    name: str,
    space: SearchSpace | str,
    metric: str | None = "val_acc",
    mode: str | None = "max",
    seed: int | None = None,
    *,
    budget: int | None = None,
    objectives: dict[str, str] | None = None,
    model: dict[str, Any] | None = None,
    **kw: Any,
) -> Searcher:
    """A Tune search algorithm over ``space`` that never repeats a canonical architecture.

    ``budget``, ``objectives`` and ``model`` (see the module docstring) reach the searchers that use them.
    """
    try:
        factory = _SEARCHERS[name]
    except KeyError:
        raise ValueError(f"unknown searcher {name!r}; available: {available_searchers()}") from None
    space = as_space(space)
    facts = {"budget": budget, "objectives": objectives, "model": model}
    kw = {**{k: facts[k] for k in _USES[name] if facts[k] is not None}, **kw}
    if not kw:
        return factory(space, metric, mode, seed)
    try:
        return factory(space, metric, mode, seed, **kw)
    except TypeError as err:  # an unknown option name, or an option of the wrong type (text from the CLI)
        raise ValueError(f"searcher {name!r} cannot take options {kw}: {err}") from err


def available_searchers() -> list[str]:
    return sorted(_SEARCHERS)


def searches_objectives(name: str) -> bool:
    """Whether searcher ``name`` optimises every objective of a multi-objective experiment (the
    others optimise its first, and the Pareto front is drawn from their trials)."""
    return "objectives" in _USES.get(name, ())


@register_searcher("random")
def _random(space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, **kw: Any) -> Searcher:
    from searchers.random_search import RandomSearcher

    return RandomSearcher(space, metric, mode, seed, **kw)


def _constraint(space: SearchSpace, kw: dict[str, Any]) -> dict[str, Any]:
    """``max_params`` (with the ``model`` fact) as the evolution searchers' ``constraint``."""
    model, max_params = kw.pop("model", None), kw.pop("max_params", None)
    if max_params is None:
        return kw
    from searchers.constraints import ParamBudget

    return {**kw, "constraint": ParamBudget(space, max_params, model)}


@register_searcher("rea", uses=("model",))
def _rea(space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, **kw: Any) -> Searcher:
    """Regularized evolution; ``max_params``: propose only networks within that many parameters."""
    from searchers.evolution import RegularizedEvolution

    return RegularizedEvolution(space, metric, mode, seed, **_constraint(space, kw))


@register_searcher("given")
def _given(space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, **kw: Any) -> Searcher:
    """The architectures in ``archs``, in order (``raynas train`` retrains a search's best this way)."""
    from searchers.given import GivenSearcher

    return GivenSearcher(space, metric, mode, seed, **kw)


@register_searcher("predictor-rea", uses=("model",))
def _predictor_rea(
    space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, embeddings: Any = None, **kw: Any
) -> Searcher:
    """REA whose children a predictor picks; ``embeddings`` may be a table, a Parquet path or "one-hot";
    ``max_params`` as for ``rea``.
    ``predictor`` given as a directory (a saved CG predictor, from the command line) is
    transferred knowledge: the default GP's ``prior``, kept while the GP learns from the search."""
    from searchers.predictor_evolution import PredictorEvolutionSearcher

    if isinstance(kw.get("predictor"), (str, os.PathLike)):
        if "prior" in kw:
            raise ValueError("predictor=DIR is the default GP's prior: give predictor= or prior=, not both")
        kw["prior"] = kw.pop("predictor")

    if embeddings is not None:
        from searchers.embedding import load_embeddings

        embeddings = load_embeddings(embeddings, space)
    return PredictorEvolutionSearcher(space, metric, mode, seed, embeddings=embeddings, **_constraint(space, kw))


@register_searcher("tpe")
def _tpe(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    num_initial: int = 20,
    gamma: float = 0.25,
    n_EI_candidates: int = 24,
    **kw: Any,
) -> Searcher:
    """Tune's HyperOptSearch (TPE) on the space's flat domains.

    ``num_initial`` (random trials before TPE models anything: hyperopt's ``n_startup_jobs``),
    ``gamma`` (the quantile of trials counted as good) and ``n_EI_candidates`` (draws from the
    good-trial density scored by expected improvement) go to ``hyperopt.tpe.suggest`` itself:
    HyperOptSearch forwards the first two only, so its ``algo`` is replaced by a partial with all three.
    """
    from searchers.hyperopt_tpe import hyperopt_tpe
    from searchers.unique import UniqueArchSearcher

    if not (isinstance(num_initial, int) and num_initial >= 0):
        raise ValueError(f"num_initial must be an int >= 0, got {num_initial!r}")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    if not (isinstance(n_EI_candidates, int) and n_EI_candidates >= 1):
        raise ValueError(f"n_EI_candidates must be an int >= 1, got {n_EI_candidates!r}")
    make_inner = partial(hyperopt_tpe, space.tune_space(), seed, num_initial, gamma, n_EI_candidates)
    return UniqueArchSearcher(make_inner, space, metric, mode, seed, **kw)


@register_searcher("nevergrad", uses=("budget",))
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

    from searchers.unique import UniqueArchSearcher, nevergrad_flat

    if not (isinstance(budget, int) and budget >= 1):
        raise ValueError(f"budget must be an int >= 1, got {budget!r}")
    if optimizer not in ng.optimizers.registry:
        raise ValueError(f"unknown nevergrad optimizer {optimizer!r}; e.g. NGOpt, OnePlusOne, DE, PortfolioDiscreteOnePlusOne")
    make_inner = partial(nevergrad_flat, space.tune_space(), seed, optimizer, budget)
    return UniqueArchSearcher(make_inner, space, metric, mode, seed, **kw)


@register_searcher("ax", uses=("objectives",))
def _ax(space: SearchSpace, metric: Any, mode: Any, seed: int | None, **kw: Any) -> Searcher:
    from searchers.ax_searcher import AxSearcher

    return AxSearcher(space, metric, mode, seed, **kw)


@register_searcher("embedding-gp")
def _embedding_gp(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    embeddings: Any = "one-hot",
    preset: str = "raynas",
    **kw: Any,
) -> Searcher:
    """GP expected improvement over an embedded pool (``embeddings``: a table, a Parquet path or
    "one-hot"); ``preset="paper"``: Hesslow & Poli's method with their settings
    (:mod:`searchers.embedding_paper`), ``"raynas"``: raynas's own (:mod:`searchers.embedding`)."""
    from searchers.embedding import EmbeddingGPSearcher, load_embeddings
    from searchers.embedding_paper import PublishedEmbeddingGPSearcher

    presets = {"raynas": EmbeddingGPSearcher, "paper": PublishedEmbeddingGPSearcher}
    if preset not in presets:
        raise ValueError(f"unknown embedding-gp preset {preset!r}; available: {sorted(presets)}")
    return presets[preset](load_embeddings(embeddings, space), metric, mode, seed, **kw)


def _embedding_pool_factory(optimizer: str) -> Factory:
    """A registry entry letting ``optimizer`` (a Tune searcher over the box) search an embedded pool."""

    def factory(
        space: SearchSpace, metric: str | None, mode: str | None, seed: int | None, embeddings: Any = "one-hot", **kw: Any
    ) -> Searcher:
        from searchers.embedding import load_embeddings
        from searchers.embedding_pool import EmbeddingPoolSearcher

        return EmbeddingPoolSearcher(load_embeddings(embeddings, space), optimizer, metric, mode, seed, **kw)

    return factory


register_searcher("embedding-ngopt", uses=("budget",))(_embedding_pool_factory("nevergrad:NGOpt"))
register_searcher("embedding-tpe")(_embedding_pool_factory("hyperopt:tpe"))
register_searcher("embedding-ax")(_embedding_pool_factory("ax"))


@register_searcher("bohb")
def _bohb(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    min_points: int | None = None,
    random_fraction: float = 1 / 3,
    gamma: float = 0.15,
    n_EI_candidates: int = 64,
    **kw: Any,
) -> Searcher:
    """BOHB's model (TPE on the largest budget with ``min_points`` results, a ``random_fraction``
    of random draws); ``raynas search`` pairs it with its HyperBand scheduler (:mod:`searchers.bohb`)."""
    from searchers.bohb import BOHBSearcher, budgeted_tpe

    if min_points is not None and not (isinstance(min_points, int) and min_points >= 1):
        raise ValueError(f"min_points must be an int >= 1, got {min_points!r}")
    if not 0 <= random_fraction <= 1:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    if not (isinstance(n_EI_candidates, int) and n_EI_candidates >= 1):
        raise ValueError(f"n_EI_candidates must be an int >= 1, got {n_EI_candidates!r}")
    options = {"min_points": min_points, "random_fraction": random_fraction, "gamma": gamma, "n_EI_candidates": n_EI_candidates}
    return BOHBSearcher(partial(budgeted_tpe, space.tune_space(), seed, options), space, metric, mode, seed, **kw)
