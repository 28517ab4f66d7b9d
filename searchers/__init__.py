"""Ray Tune ``Searcher``s over raynas search spaces (``make_searcher(name, space, ...)``)."""
from searchers.base import FINISHED, ArchSearcher
from searchers.evolution import RegularizedEvolution
from searchers.random_search import RandomSearcher
from searchers.registry import available_searchers, make_searcher, register_searcher
from searchers.unique import UniqueArchSearcher

__all__ = [
    "FINISHED",
    "ArchSearcher",
    "RandomSearcher",
    "RegularizedEvolution",
    "UniqueArchSearcher",
    "available_searchers",
    "make_searcher",
    "register_searcher",
]
