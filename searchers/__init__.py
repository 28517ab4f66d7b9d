"""Ray Tune ``Searcher``s over raynas search spaces (``make_searcher(name, space, ...)``).

The embedding searchers (BoTorch, scikit-learn) are imported on first use, so importing the
package for REA or random search stays light in every Ray worker.
"""
from __future__ import annotations

import importlib
from typing import Any

from searchers.base import FINISHED, ArchSearcher
from searchers.evolution import RegularizedEvolution
from searchers.random_search import RandomSearcher
from searchers.registry import available_searchers, make_searcher, register_searcher
from searchers.unique import UniqueArchSearcher

_LAZY = {
    "EmbeddingGPSearcher": "searchers.embedding",
    "EmbeddingPoolSearcher": "searchers.embedding_pool",
    "AxSearcher": "searchers.ax_searcher",
    "PredictorEvolutionSearcher": "searchers.predictor_evolution",
}
__all__ = [
    "FINISHED",
    "ArchSearcher",
    "RandomSearcher",
    "RegularizedEvolution",
    "UniqueArchSearcher",
    "available_searchers",
    "make_searcher",
    "register_searcher",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'searchers' has no attribute {name!r}")
