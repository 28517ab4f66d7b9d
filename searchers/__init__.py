"""Ray Tune ``Searcher``s over raynas search spaces (``make_searcher(name, space, ...)``).

The searchers are imported on first use: the driver lists and checks searcher names before
Ray Tune loads, and a Ray worker running REA never imports BoTorch or scikit-learn.
"""
from __future__ import annotations

import importlib
from typing import Any

from searchers.registry import available_searchers, make_searcher, register_searcher, searches_objectives

_LAZY = {
    "FINISHED": "searchers.base",
    "ArchSearcher": "searchers.base",
    "RegularizedEvolution": "searchers.evolution",
    "RandomSearcher": "searchers.random_search",
    "GivenSearcher": "searchers.given",
    "UniqueArchSearcher": "searchers.unique",
    "EmbeddingGPSearcher": "searchers.embedding",
    "EmbeddingPoolSearcher": "searchers.embedding_pool",
    "AxSearcher": "searchers.ax_searcher",
    "PredictorEvolutionSearcher": "searchers.predictor_evolution",
}
__all__ = [
    "available_searchers",
    "searches_objectives",
    "make_searcher",
    "register_searcher",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'searchers' has no attribute {name!r}")
