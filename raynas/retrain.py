"""Retrain a search's best architectures from scratch at full size: ``raynas train``.

A retraining is an ordinary raynas experiment (so it is resumable, runs its trials in
parallel and writes ``trials.parquet`` like a search): the ``given`` searcher proposes the
chosen architectures, one trial each, and the stand-alone trainable trains them with the
final-training protocol of their space (a named preset) plus the user's overrides, keeping
the last and the best-val_acc weights (``state.pt``, ``best.pt`` in each trial's checkpoint).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from raynas import storage
from raynas.experiment import SearchSettings, load_settings, local_folder
from raynas.io import read_parquet
from raynas.results import pareto_table
from raynas.trainables.settings import TrainerSettings, key_names
from search_spaces import as_space

#: published final-training protocols (trainer keys; ``epochs`` becomes the run's epochs)
PRESETS: dict[str, dict[str, Any]] = {
    # DARTS (Liu et al. 2019) / NB301: 36 channels, 20 cells, auxiliary head 0.4, cutout 16 of
    # CIFAR's 32 pixels (half the side, on any image size), drop-path rising linearly to 0.2,
    # SGD 0.025 cosine over 600 epochs, batch 96
    "darts": {
        "epochs": 600, "lr": 0.025, "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4, "batch_size": 96,
        "grad_clip": 5.0, "cutout": 0.5, "auxiliary_weight": 0.4, "drop_path": 0.2,
        "build": {"C": 36, "layers": 20, "auxiliary": True},
    },
    # NAS-Bench-201 (Dong & Yang 2020): 16 channels, 5 cells per stage, Nesterov SGD 0.1
    # cosine over 200 epochs, weight decay 5e-4, batch 256
    "nb201": {
        "epochs": 200, "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "batch_size": 256,
        "build": {"C": 16, "N": 5},
    },
}  # fmt: skip
#: the trainer keys a stand-alone retraining takes from a search that trained like it
STANDALONE_KEYS = frozenset(key_names(TrainerSettings))
#: the preset ``auto`` picks for a space (other spaces keep the search's trainer settings)
SPACE_PRESETS = {"darts": "darts", "darts-edges": "darts", "darts-csnas": "darts", "nb201": "nb201"}


def preset_options(preset: str, space: str) -> dict[str, Any]:
    """The trainer keys of ``preset``: a name in :data:`PRESETS`, ``"auto"`` (the space's
    own, if it has one) or ``"none"``."""
    if preset == "auto":
        preset = SPACE_PRESETS.get(space, "none")
    if preset == "none":
        return {}
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {['auto', 'none', *PRESETS]}")
    return copy.deepcopy(PRESETS[preset])


def best_archs(experiment: str | Path, top_k: int, space: Any = None) -> tuple[SearchSettings, list[str]]:
    """A finished experiment's settings and its ``top_k`` best distinct architectures: by its
    metric, or for a multi-objective experiment its Pareto set (by the first objective)."""
    saved, rows = best_trials(experiment, top_k, space)
    return saved, [r["arch"] for r in rows]


def best_trials(experiment: str | Path, top_k: int, space: Any = None) -> tuple[SearchSettings, list[dict[str, Any]]]:
    """The experiment's settings and the ``trials.parquet`` rows of its ``top_k`` best distinct
    architectures (see :func:`best_archs`), best first."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    folder = local_folder(experiment)
    saved = load_settings(folder)
    if saved is None:
        raise FileNotFoundError(f"{folder} is not a raynas experiment (no raynas_settings.json)")
    if not (saved.trainable_info.searches_archs or saved.trainable_info.derives_archs):
        raise ValueError(f"{folder} trained {saved.trainable!r} trials, one per seed, not one per architecture; "
                         "pass the architectures to retrain with --arch")  # fmt: skip
    path = folder / "trials.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the experiment has not finished (resume it first)")
    table = read_parquet(path, "trials table")
    metric, mode = saved.metric, saved.mode
    if saved.objectives:
        table = pareto_table(table, saved.objectives)
    rows = [r for r in table.to_pylist() if r.get("arch") and _finite(r.get(metric))]
    rows.sort(key=lambda r: float(r[metric]), reverse=mode == "max")
    space = as_space(space or saved.space)
    picked: dict[str, dict[str, Any]] = {}
    for row in rows:
        picked.setdefault(space.parse(row["arch"]).key, row)
    if not picked:
        raise ValueError(f"no trial of {folder} reported {metric!r}: nothing to pick")
    return saved, list(picked.values())[:top_k]


def _trains_like_standalone(info: Any) -> bool:
    """Whether a search's trials trained each architecture with labels as ``standalone`` does
    (``sampled``: several networks of one NAGO generator), so its trainer keys carry over."""
    return info.searches_archs and issubclass(info.settings, TrainerSettings) and info.metric == "val_acc"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def train_settings(
    archs: Sequence[str],
    space: Any,
    *,
    preset: str = "auto",
    dataset: str | None = None,
    epochs: int | None = None,
    trainer_options: Mapping[str, Any] | None = None,
    base_options: Mapping[str, Any] | None = None,
    **run: Any,
) -> SearchSettings:
    """The experiment that retrains ``archs``: trainer keys are ``base_options`` (the search's),
    then the preset's, then ``trainer_options`` (``build`` dicts merged key by key); ``run``
    takes the remaining :class:`SearchSettings` fields (storage, name, resources, seed...)."""
    space_obj = as_space(space)
    space_obj.as_unique_archs(archs)  # a string that is no architecture is named before anything starts
    options = _merge(_merge(dict(base_options or {}), preset_options(preset, space_obj.name)), dict(trainer_options or {}))
    preset_epochs = options.pop("epochs", None)
    options["keep_best"] = options.get("keep_best", True)
    return SearchSettings(
        space=space if isinstance(space, str) else space_obj,
        searcher="given",
        trainable="standalone",
        dataset=dataset,
        metric="val_acc",
        mode="max",
        num_samples=len(archs),
        epochs=epochs or preset_epochs or SearchSettings.epochs,
        searcher_options={"archs": list(archs)},
        trainer_options=options,
        **run,
    )


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``; a ``build`` dict is merged key by key."""
    out = {**base, **over}
    if isinstance(base.get("build"), dict) and isinstance(over.get("build"), dict):
        out["build"] = {**base["build"], **over["build"]}
    return out


def from_experiment(
    experiment: str | Path, top_k: int, dataset: str | None = None, space: Any = None, **kw: Any
) -> SearchSettings:
    """:func:`train_settings` for the ``top_k`` best architectures of ``experiment``, on its
    dataset unless ``dataset`` is given (a table look-up search has none: give one).  ``space``:
    the space, when the experiment's was the user's own (its settings name it, cannot rebuild it).
    The retraining is written beside the search (``<search>-retrain``) unless ``storage`` and
    ``name`` say otherwise."""
    saved, archs = best_archs(experiment, top_k, space)
    if dataset is None:
        if saved.trainable_info.shared == "benchmark":
            raise ValueError(f"{experiment} looked architectures up in a benchmark table ({saved.dataset} column); "
                             "give the images to train them on with --dataset (e.g. cifar10:/path)")  # fmt: skip
        dataset = saved.dataset
    keep = {k: v for k, v in saved.trainer_options.items() if k not in ("epochs",)}
    if _trains_like_standalone(saved.trainable_info):  # its recipe (lr, schedule, ...) is the one to retrain with
        keep = {k: v for k, v in keep.items() if k in STANDALONE_KEYS}
    else:  # a label-free or weight-sharing recipe does not train a network on its own
        keep = {k: v for k, v in keep.items() if k in ("device", "precision", "channels_last", "build")}
    parent, _, folder = storage.resolve(experiment).rstrip("/").rpartition("/")
    kw["name"] = kw.get("name") or f"{folder}-retrain"
    kw["storage"] = kw.get("storage") or parent  # beside the search, where its user looks
    return train_settings(archs, space or saved.space, dataset=dataset, base_options=keep, **kw)
