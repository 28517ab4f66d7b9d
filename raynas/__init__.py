"""raynas: Neural Architecture Search as a Ray Tune plugin.

Core pieces live here (the :class:`Arch` value, benchmark tables, computation graphs,
trainables, data, CLI); search spaces, searchers and predictors are sibling packages.
"""
from raynas.arch import Arch
from raynas.benchmarks import TabularBenchmark
from raynas.hashing import dag_hash

__version__ = "0.1.0"
__all__ = ["Arch", "TabularBenchmark", "dag_hash", "__version__"]
