"""Tune trainables: stand-alone training, benchmark look-up and the weight-sharing supernet."""
from raynas.trainables.benchmark import BenchmarkTrainable, load_benchmark
from raynas.trainables.settings import TrainerSettings, decode_trial
from raynas.trainables.standalone import StandaloneTrainable, accuracy
from raynas.trainables.supernet import SupernetSettings, SupernetTrainable, load_supernet_state
from raynas.trainables.supernet_search import (
    evolution_search,
    kendall_tau,
    random_search,
    score_archs,
    sparse_kendall_tau,
    top_k_overlap,
)

__all__ = [
    "BenchmarkTrainable",
    "StandaloneTrainable",
    "SupernetSettings",
    "SupernetTrainable",
    "TrainerSettings",
    "accuracy",
    "decode_trial",
    "evolution_search",
    "kendall_tau",
    "load_benchmark",
    "load_supernet_state",
    "random_search",
    "score_archs",
    "sparse_kendall_tau",
    "top_k_overlap",
]
