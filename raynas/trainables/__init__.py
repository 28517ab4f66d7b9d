"""Tune trainables, one module each: stand-alone training, benchmark look-up, label-free
(contrastive) training, generator-level sampling (NAGO) and the weight-sharing supernet.

Importing this package registers them (``trainable_info(name)``, ``available_trainables()``).
"""
from raynas.trainables.base import ReconfigurableTrainable
from raynas.trainables.benchmark import BenchmarkTrainable, load_benchmark
from raynas.trainables.contrastive import ContrastiveModel, MemoryBankNCE, NTXentLoss, knn_accuracy
from raynas.trainables.registry import (
    TrainableInfo,
    available_trainables,
    register_trainable,
    trainable_info,
    with_data,
)
from raynas.trainables.sampled import SampledTrainable
from raynas.trainables.selfsup import ContrastiveTraining, SelfSupervisedTrainable, SelfSupSettings
from raynas.trainables.settings import TrainerSettings, decode_trial
from raynas.trainables.standalone import ArchTraining, StandaloneTrainable, accuracy
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
    "ArchTraining",
    "BenchmarkTrainable",
    "ContrastiveModel",
    "ContrastiveTraining",
    "MemoryBankNCE",
    "NTXentLoss",
    "ReconfigurableTrainable",
    "SampledTrainable",
    "SelfSupSettings",
    "SelfSupervisedTrainable",
    "StandaloneTrainable",
    "SupernetSettings",
    "SupernetTrainable",
    "TrainableInfo",
    "TrainerSettings",
    "accuracy",
    "available_trainables",
    "decode_trial",
    "evolution_search",
    "knn_accuracy",
    "kendall_tau",
    "load_benchmark",
    "load_supernet_state",
    "random_search",
    "register_trainable",
    "score_archs",
    "sparse_kendall_tau",
    "top_k_overlap",
    "trainable_info",
    "with_data",
]
