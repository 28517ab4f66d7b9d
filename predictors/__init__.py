"""Embeddings, graph encoders, zero-cost proxies, surrogates and Tune schedulers.

Members are imported on first use, so ``import predictors`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "jacobian_features": "predictors.jacobian",
    "data_jacobian": "predictors.jacobian",
    "input_batch": "predictors.jacobian",
    "input_basis": "predictors.jacobian",
    "svd_basis": "predictors.jacobian",
    "extract_to_parquet": "predictors.jacobian_store",
    "read_features": "predictors.jacobian_store",
    "iter_features": "predictors.jacobian_store",
    "SetEncoder": "predictors.set_encoder",
    "train_encoder": "predictors.set_encoder",
    "embed": "predictors.set_encoder",
    "ArchEmbeddings": "predictors.embeddings",
    "GPSurrogate": "predictors.gp",
    "FeatureSettings": "predictors.embed_pipeline",
    "build_embeddings": "predictors.embed_pipeline",
    "embed_architectures": "predictors.embed_pipeline",
    "module_features": "predictors.embed_pipeline",
    "ZeroCostPredictor": "predictors.zero_cost",
    "PROXIES": "predictors.zero_cost",
    "PredictiveStoppingScheduler": "predictors.stopping",
    "BayesianLinearPredictor": "predictors.stopping",
    "CGPredictor": "predictors.cg",
    "ranking_loss": "predictors.cg",
    "CGEncoder": "predictors.cg_encoder",
    "pretrain_encoder": "predictors.cg_encoder",
    "GraphCache": "predictors.cg_data",
    "GraphReader": "predictors.cg_data",
    "Reference": "predictors.reference",
    "StackedPredictor": "predictors.stacking",
    "EnsemblePredictor": "predictors.ensemble",
    "smooth_over_moves": "predictors.smoothing",
    "move_graph": "predictors.smoothing",
    "EmbeddingGPPredictor": "predictors.embedding_gp",
    "load_builder": "predictors.reference",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'predictors' has no attribute {name!r}")
