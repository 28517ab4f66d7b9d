"""Score a user's own PyTorch model against a reference search space's benchmark table.

A :class:`~predictors.cg.CGPredictor` reads computation graphs, so it can be fitted on a
reference space's labelled architectures (a NAS benchmark table) and then asked about any
``nn.Module``: the predicted accuracy in the table's units, where that lands among the
table's architectures, and which reference architectures the model's graph embedding is
closest to (with their real accuracies, a sanity check on the prediction).

The reference architectures are built at their space's *full* size (not the reduced builds the
predictor uses for cross-space work) because the user's model is a full network: graph size,
parameter count and FLOPs are inputs of the encoder, and a full model next to reduced
references would sit outside everything the predictor has seen.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from predictors.cg import CGPredictor
from raynas.arch import Arch
from raynas.benchmarks import TabularBenchmark


def load_builder(spec: str) -> Callable[[], nn.Module]:
    """``"path/to/model.py:build_fn"`` -> the function ``build_fn`` of that file."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name.isidentifier():
        raise ValueError(f"expected path/to/model.py:function_name, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    module_spec = importlib.util.spec_from_file_location(f"raynas_user_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent.resolve()))  # the model file may import its neighbours
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    builder = getattr(module, name, None)
    if not callable(builder):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ValueError(f"{path} defines no function {name!r}; callables there: {defined}")
    return builder


def build_user_model(builder: Callable[..., nn.Module], num_classes: int) -> nn.Module:
    """Call ``builder`` (with ``num_classes=`` when it takes that argument) and check it gives a module."""
    takes_classes = "num_classes" in inspect.signature(builder).parameters
    model = builder(num_classes=num_classes) if takes_classes else builder()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{getattr(builder, '__name__', builder)}() must return a torch.nn.Module, got {type(model).__name__}")
    return model.eval()


@dataclass
class ReferenceScore:
    """What :func:`score_against_reference` found for one model."""

    predicted: float
    std: float
    table_percentile: float  # % of the reference architectures whose real accuracy is below ``predicted``
    predicted_percentile: float  # % of the reference architectures the predictor scores below the model
    params: int
    neighbors: list[tuple[str, float, float]] = field(default_factory=list)  # (arch, real accuracy, cosine)


@dataclass
class Reference:
    """A reference space's labelled architectures and a predictor fitted on them."""

    space: str
    archs: list[Arch]
    accuracy: np.ndarray
    predictor: CGPredictor
    _scored: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_table(
        cls,
        benchmark: str | Path,
        space: str,
        dataset: str = "cifar10",
        num_archs: int = 500,
        seed: int = 0,
        predictor: CGPredictor | None = None,
    ) -> "Reference":
        """``num_archs`` distinct canonical architectures of the table (drawn with ``seed``) with
        their valid accuracy, the mean over the table's rows of each canonical class.
        ``predictor`` (default: a new :class:`CGPredictor` building ``space`` at full size) is
        used as given: call :meth:`fit` unless it was fitted on these architectures already."""
        table = TabularBenchmark.from_parquet(benchmark, space, dataset)
        valid = table.column("valid")
        classes: dict[str, list[int]] = {}
        for row, arch in enumerate(table.archs):
            classes.setdefault(arch.key, []).append(row)
        rows = list(classes.values())
        if num_archs < 2:
            raise ValueError(f"num_archs must be >= 2 to fit a predictor, got {num_archs}")
        chosen = np.random.default_rng(seed).choice(len(rows), size=min(num_archs, len(rows)), replace=False)
        archs = [table.archs[rows[i][0]] for i in chosen]
        accuracy = np.array([valid[rows[i]].mean() for i in chosen])
        model = predictor if predictor is not None else CGPredictor(builds={space: {}}, seed=seed)
        return cls(table.archs[0].space, archs, accuracy, model)

    def fit(self) -> "Reference":
        """Fit the predictor on the reference architectures."""
        self.predictor.fit(self.archs, self.accuracy)
        self._scored = None
        return self

    def _references(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy and unit-length embedding of every reference arch, computed once
        (per fit) however many models are scored."""
        if self._scored is None:
            mean, _ = self.predictor.predict(self.archs)
            self._scored = (mean, _unit(self.predictor.embed(self.archs)))
        return self._scored

    def score(self, model: nn.Module, neighbors: int = 3) -> ReferenceScore:
        """Predict ``model``'s accuracy in this reference's units and place it among the references."""
        graph = self.predictor.graphs([model])  # traced once, for the prediction and the embedding
        mean, std = self.predictor.predict(graph, groups=[self.space])
        ref_mean, ref_unit = self._references()
        cosine = ref_unit @ _unit(self.predictor.embed(graph))[0]
        closest = np.argsort(-cosine)[:neighbors]
        return ReferenceScore(
            predicted=float(mean[0]),
            std=float(std[0]),
            table_percentile=float(100 * np.mean(self.accuracy < mean[0])),
            predicted_percentile=float(100 * np.mean(ref_mean < mean[0])),
            params=sum(p.numel() for p in model.parameters()),
            neighbors=[(str(self.archs[i]), float(self.accuracy[i]), float(cosine[i])) for i in closest],
        )


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
