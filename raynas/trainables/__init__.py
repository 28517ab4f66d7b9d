"""Tune trainables: stand-alone training, benchmark look-up, the weight-sharing supernet and
label-free (contrastive self-supervised) training."""
from raynas.trainables.benchmark import BenchmarkTrainable, load_benchmark
from raynas.trainables.contrastive import ContrastiveModel, MemoryBankNCE, NTXentLoss, knn_accuracy
from raynas.trainables.selfsup import SelfSupervisedTrainable, SelfSupSettings
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
    "ContrastiveModel",
    "MemoryBankNCE",
    "NTXentLoss",
    "SelfSupSettings",
    "SelfSupervisedTrainable",
    "StandaloneTrainable",
    "SupernetSettings",
    "SupernetTrainable",
    "TrainerSettings",
    "accuracy",
    "decode_trial",
    "evolution_search",
    "knn_accuracy",
    "kendall_tau",
    "load_benchmark",
    "load_supernet_state",
    "random_search",
    "score_archs",
    "sparse_kendall_tau",
    "top_k_overlap",
]
