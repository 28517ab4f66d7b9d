"""Score a user's own PyTorch model against a reference search space's benchmark table.

A :class:`~predictors.cg.CGPredictor` reads computation graphs, so it can be fitted on a
reference space's labelled architectures (a NAS benchmark table) and then asked about any
``nn.Module``: the predicted accuracy in the table's units, where that lands among the
table's architectures, and which reference architectures the model's graph embedding is
closest to (with their real accuracies, a sanity check on the prediction).

What keeps the answer honest:

* **A network whose output ignores its input** (e.g. an NB201 cell of ``none`` edges) cannot
  learn anything; a graph predictor cannot tell, because such a graph looks like any other.
  Every model is run on two different random batches first; one whose outputs agree scores
  chance (100 / its outputs, in %; never above the table's worst) with no spread, whatever
  the predictor says.
* **Uncertainty** is the spread of the predictor's heads together with its error on
  reference architectures it was not fitted on (a fifth of them are held out), widened in
  proportion to how far beyond the references' own spacing the model's embedding lies.
* **Out of distribution**: a model farther from every reference than the references are
  from each other is flagged; its prediction is an extrapolation.

The reference architectures are built at their space's *full* size (not the reduced builds
the predictor uses for cross-space work) because the user's model is a full network.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from predictors.cg import CGPredictor
from raynas.arch import Arch
from raynas.benchmarks import TabularBenchmark
from raynas.io import atomic_write
from raynas.loading import load_object
from search_spaces import as_space

#: share of the reference architectures held out to measure the predictor's error
HOLDOUT = 0.2
#: the file beside a saved predictor that holds the reference architectures and their errors
REFERENCE_FILE = "reference.json"
#: standardised graph features beyond this many standard deviations are read as this many
FEATURE_CLIP = 3.0
#: the most the uncertainty of an out-of-distribution model is widened
MAX_WIDENING = 3.0


def reference_predictor(space: str, seed: int = 0, **options: object) -> CGPredictor:
    """The CG predictor a reference fits: ``space`` built at full size, features clipped so
    that models unlike every reference are read as extreme, not extrapolated, and labels that
    go a little past the references' range for models scored past all of them."""
    return CGPredictor(builds={space: {}}, seed=seed, feature_clip=FEATURE_CLIP, extrapolate=True, **options)


def load_builder(spec: str) -> Callable[..., nn.Module]:
    """``"path/to/model.py:build_fn"`` (or ``package.module:build_fn``) -> that function."""
    builder = load_object(spec, "function", "model file")
    if not callable(builder):
        raise ValueError(f"{spec} is not a function, it is a {type(builder).__name__}")
    return builder


def build_user_model(
    builder: Callable[..., nn.Module], num_classes: int, in_shape: tuple[int, ...] | None = None
) -> nn.Module:
    """Call ``builder`` (with ``num_classes=`` and ``in_shape=`` when it takes them) and check it
    gives a module; with ``in_shape``, also that it runs on such an input, so a model that does
    not is named before minutes of fitting."""
    parameters = inspect.signature(builder).parameters
    given = {"num_classes": num_classes, "in_shape": in_shape}
    model = builder(**{k: v for k, v in given.items() if k in parameters and v is not None})
    name = getattr(builder, "__name__", builder)
    if not isinstance(model, nn.Module):
        raise ValueError(f"{name}() must return a torch.nn.Module, got {type(model).__name__}")
    if in_shape is not None:
        from raynas.graph import trace

        try:
            trace(model, (1, *in_shape))
        except Exception as err:  # the tracer names the module that failed
            raise ValueError(f"{name}: {err} (set --in-shape to the input your model takes)") from None
    return model.eval()


@torch.no_grad()
def chance_if_input_ignored(model: nn.Module, in_shape: tuple[int, ...], seed: int = 0) -> float | None:
    """The chance accuracy (%) of ``model`` if it gives the same output for two different
    random batches (eval mode), else ``None``: such a network cannot learn."""
    generator = torch.Generator().manual_seed(seed)
    one, two = (torch.randn(4, *in_shape, generator=generator) for _ in range(2))
    training = model.training
    model.eval()
    try:
        first, second = model(one), model(two)
    finally:
        model.train(training)
    return 100.0 / first.shape[-1] if torch.allclose(first, second, rtol=1e-5, atol=1e-6) else None


@dataclass
class ReferenceScore:
    """What :meth:`Reference.score` found for one model."""

    predicted: float
    std: float
    table_percentile: float  # % of the reference architectures whose real accuracy is below ``predicted``
    predicted_percentile: float  # % of the reference architectures the predictor scores below the model
    params: int
    neighbors: list[tuple[str, float, float]] = field(default_factory=list)  # (arch, real accuracy, cosine)
    distance: float = 0.0  # to the nearest reference, in units of the references' typical nearest-neighbour distance
    out_of_distribution: bool = False
    ignores_input: bool = False


@dataclass
class Reference:
    """A reference space's labelled architectures and a predictor fitted on them."""

    space: str
    archs: list[Arch]
    accuracy: np.ndarray
    predictor: CGPredictor
    holdout_rmse: float = 0.0
    _scored: tuple[np.ndarray, np.ndarray, float, float] | None = field(default=None, init=False, repr=False)

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
        if num_archs < 10:
            raise ValueError(f"num_archs must be >= 10 (a fifth is held out to measure the error), got {num_archs}")
        chosen = np.random.default_rng(seed).choice(len(rows), size=min(num_archs, len(rows)), replace=False)
        archs = [table.archs[rows[i][0]] for i in chosen]
        accuracy = np.array([valid[rows[i]].mean() for i in chosen])
        model = predictor if predictor is not None else reference_predictor(space, seed)
        return cls(table.archs[0].space, archs, accuracy, model)

    def fit(self) -> "Reference":
        """Fit the predictor on all but a held-out fifth of the references, and measure its
        error (RMSE, label units) on that fifth."""
        held = len(self.archs) - max(2, int(round(len(self.archs) * (1 - HOLDOUT))))
        fit_archs, fit_y = self.archs[held:], self.accuracy[held:]
        self.predictor.fit(fit_archs, fit_y)
        predicted, _ = self.predictor.predict(self.archs[:held])
        self.holdout_rmse = float(np.sqrt(np.mean((predicted - self.accuracy[:held]) ** 2)))
        self._scored = None
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """The fitted predictor and the reference architectures, reloadable with :meth:`load`."""
        path = self.predictor.save(path)
        state = {"space": self.space, "archs": [a.text for a in self.archs], "accuracy": self.accuracy.tolist(),
                 "holdout_rmse": self.holdout_rmse}  # fmt: skip
        atomic_write(Path(path) / REFERENCE_FILE, json.dumps(state))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "Reference":
        state_path = Path(path) / REFERENCE_FILE
        if not state_path.is_file():
            raise FileNotFoundError(f"{path} is not a saved reference: missing {REFERENCE_FILE}")
        state = json.loads(state_path.read_text())
        space = as_space(state["space"])
        archs = [space.parse(t) for t in state["archs"]]
        return cls(space.name, archs, np.asarray(state["accuracy"]), CGPredictor.load(path, device), state["holdout_rmse"])

    # ------------------------------------------------------------------ scoring
    def _references(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Predicted accuracy and standardised embeddings of every reference arch, the median
        and the largest distance of a reference to its nearest other reference; computed once
        (per fit) however many models are scored."""
        if self._scored is None:
            mean, _ = self.predictor.predict(self.archs)
            embedded = self._standardised(self.predictor.embed(self.archs), fit=True)
            distances = np.linalg.norm(embedded[:, None, :] - embedded[None, :, :], axis=2)
            np.fill_diagonal(distances, np.inf)
            nearest = distances.min(axis=1)
            self._scored = (mean, embedded, float(np.median(nearest)), float(nearest.max()))
        return self._scored

    def _standardised(self, embeddings: np.ndarray, fit: bool = False) -> np.ndarray:
        if fit:
            self._center, self._scale = embeddings.mean(axis=0), embeddings.std(axis=0) + 1e-8
        return (embeddings - self._center) / self._scale

    def score(self, model: nn.Module, neighbors: int = 3, in_shape: tuple[int, ...] = (3, 32, 32)) -> ReferenceScore:
        """Predict ``model``'s accuracy in this reference's units and place it among the references."""
        ref_mean, ref_embedded, typical, widest = self._references()
        graph = self.predictor.graphs([model.cpu()])  # traced once (on the CPU), for the prediction and the embedding
        mean, head_std = self.predictor.predict(graph, groups=[self.space])
        embedded = self._standardised(self.predictor.embed(graph))[0]
        distance = np.linalg.norm(ref_embedded - embedded, axis=1)
        closest = np.argsort(distance)[:neighbors]
        ratio = float(distance.min() / max(typical, 1e-12))
        predicted = float(mean[0])
        std = float(np.hypot(head_std[0], self.holdout_rmse) * min(max(1.0, distance.min() / widest), MAX_WIDENING))
        chance = chance_if_input_ignored(model, in_shape)
        if chance is not None:  # it cannot learn: chance, whatever its graph resembles
            predicted, std = min(chance, float(self.accuracy.min())), 0.0
        cosine = ref_embedded[closest] @ embedded / np.maximum(np.linalg.norm(ref_embedded[closest], axis=1) * np.linalg.norm(embedded), 1e-12)
        return ReferenceScore(
            predicted=predicted,
            std=std,
            table_percentile=float(100 * np.mean(self.accuracy < predicted)),
            predicted_percentile=float(100 * np.mean(ref_mean < predicted)),
            params=sum(p.numel() for p in model.parameters()),
            neighbors=[(str(self.archs[i]), float(self.accuracy[i]), float(c)) for i, c in zip(closest, cosine)],
            distance=ratio,
            out_of_distribution=bool(distance.min() > widest),
            ignores_input=chance is not None,
        )


def cache_key(benchmark: str | Path, space: str, dataset: str, num_archs: int, seed: int, **predictor: object) -> str:
    """A name for the reference predictor of these settings (the table by path, size and time)."""
    stat = Path(benchmark).stat()
    settings = [str(Path(benchmark).resolve()), stat.st_size, stat.st_mtime_ns, space, dataset, num_archs, seed, predictor]
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
