"""Tune trainables, one module each: stand-alone training, benchmark look-up, label-free
(contrastive) training, generator-level sampling (NAGO) and the weight-sharing supernet.

``trainable_info(name)`` / ``available_trainables()`` know the built-in ones (declared in
:mod:`raynas.trainables.registry`).  The trainables themselves (torch, Ray Tune) are imported
on first use, so the driver's checks of trainer keys and metrics run before either loads.
"""
from __future__ import annotations

import importlib
from typing import Any

from raynas.trainables.registry import (
    TrainableInfo,
    available_trainables,
    declare_trainable,
    register_trainable,
    trainable_info,
    with_data,
)
from raynas.trainables.settings import (
    BenchmarkSettings,
    DifferentiableSettings,
    SampledSettings,
    SelfSupSettings,
    SupernetSettings,
    TrainerSettings,
    decode_trial,
)

_LAZY = {
    "ReconfigurableTrainable": "raynas.trainables.base",
    "BenchmarkTrainable": "raynas.trainables.benchmark",
    "load_benchmark": "raynas.trainables.benchmark",
    "ContrastiveModel": "raynas.trainables.contrastive",
    "ArchWeights": "raynas.trainables.differentiable",
    "DifferentiableTrainable": "raynas.trainables.differentiable",
    "MixedOpNetwork": "raynas.trainables.mixed_net",
    "derive": "raynas.trainables.mixed_net",
    "MemoryBankNCE": "raynas.trainables.contrastive",
    "ImagePatchNCE": "raynas.trainables.contrastive",
    "NTXentLoss": "raynas.trainables.contrastive",
    "knn_accuracy": "raynas.trainables.contrastive",
    "SampledTrainable": "raynas.trainables.sampled",
    "ContrastiveTraining": "raynas.trainables.selfsup",
    "SelfSupervisedTrainable": "raynas.trainables.selfsup",
    "ArchTraining": "raynas.trainables.standalone",
    "StandaloneTrainable": "raynas.trainables.standalone",
    "accuracy": "raynas.trainables.standalone",
    "SupernetTrainable": "raynas.trainables.supernet",
    "load_supernet_state": "raynas.trainables.supernet",
    "evolution_search": "raynas.trainables.supernet_search",
    "kendall_tau": "raynas.trainables.supernet_search",
    "random_search": "raynas.trainables.supernet_search",
    "score_archs": "raynas.trainables.supernet_search",
    "sparse_kendall_tau": "raynas.trainables.supernet_search",
    "top_k_overlap": "raynas.trainables.supernet_search",
}

__all__ = [
    "BenchmarkSettings",
    "DifferentiableSettings",
    "SampledSettings",
    "SelfSupSettings",
    "SupernetSettings",
    "TrainableInfo",
    "TrainerSettings",
    "available_trainables",
    "declare_trainable",
    "decode_trial",
    "register_trainable",
    "trainable_info",
    "with_data",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raynas.trainables' has no attribute {name!r}")
