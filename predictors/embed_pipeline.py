"""From architectures to an embeddings table: Jacobian features -> SetEncoder -> ArchEmbeddings.

The glue between :mod:`predictors.jacobian_store` (features of many architectures, streamed to
a directory of Parquet parts), :mod:`predictors.set_encoder` (the contrastive DeepSet encoder)
and :class:`~predictors.embeddings.ArchEmbeddings` (what searchers and surrogates read)::

    build_embeddings(["nb201", "nb101"], "emb.parquet", FeatureSettings("digits", batch_size=64), archs=500,
                     builds={"nb201": {"C": 8, "N": 1}, "nb101": {"stem_channels": 16}}, train=True)

**One encoder, several spaces.**  Features of different spaces are comparable when they were
taken on the same input batch (dataset, split, ``B`` and seed), projected onto the same basis
(the input basis of that batch, ``P`` directions) and with the same ``K``: a
:class:`FeatureSettings` is exactly that, and every space's features go to their own directory
``<root>/<space>/`` under it.  :func:`train_shared_encoder` trains one encoder on the union of
those directories (streamed through a temporary directory of links to their part files, so no
space's features are ever loaded whole), and that encoder embeds architectures of any space
whose features match its settings (:func:`check_encoder` says what differs when they do not).

**Streaming.**  Embedding reads one record batch of one part file at a time; only the
``N x E`` embeddings are held in memory.  :func:`embed_architectures` embeds a few
architectures in this process (no Ray, nothing stored) and :func:`module_features` takes the
features of a module's current (e.g. trained) weights.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from predictors.embeddings import ArchEmbeddings
from predictors.jacobian import (
    check_projection,
    data_jacobian,
    input_basis,
    input_batch,
    jacobian_features,
    project_jacobian,
)
from predictors.jacobian_store import (
    BASIS_FILE,
    META_FILE,
    ExtractionSummary,
    extract_to_parquet,
    part_files,
    projection_meta,
    read_meta,
)
from predictors.set_encoder import SetEncoder, embed, train_encoder
from raynas.arch import Arch
from raynas.io import write_parquet_atomic
from raynas.parallel import ray_session
from search_spaces import SearchSpace, as_space

#: settings two feature directories must share for one encoder to read both
SHARED_SETTINGS = ("dataset", "split", "inputs_sha1", "in_shape", "num_classes", "batch_size", "proj_dim", "projection")

ArchRequest = int | Iterable[Arch | str] | None


@dataclass(frozen=True)
class FeatureSettings:
    """The input batch, basis and ``K`` that make features of any space comparable.

    Args:
        dataset: :func:`raynas.data.load_dataset` spec the ``batch_size`` images come from.
        num_inits: ``K`` random initialisations per architecture.
        batch_size: ``B`` images.
        proj_dim: ``P`` directions of the input basis (clamped to ``B``; the identity when ``P >= D``).
        seed: picks the images, the initialisations and sampled architectures.
        split: dataset split of the images.
        projection: ``"input"`` (the shared basis) or ``"svd"`` (per matrix, as published).
    """

    dataset: str = "digits"
    num_inits: int = 4
    batch_size: int = 256
    proj_dim: int = 128
    seed: int = 0
    split: str = "train"
    projection: str = "input"

    def __post_init__(self) -> None:
        check_projection(self.projection)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "FeatureSettings":
        """The settings a features directory (or an encoder trained on one) was made with."""
        if not meta:
            raise ValueError("no feature settings recorded (an encoder trained on an in-memory array); pass settings=")
        numbers = {k: int(meta[k]) for k in ("num_inits", "batch_size", "proj_dim", "seed")}
        return cls(dataset=meta["dataset"], split=meta["split"], projection=meta.get("projection", "input"), **numbers)

    def inputs(self) -> torch.Tensor:
        """The fixed normalised batch, ``B x C x H x W``."""
        return input_batch(self.dataset, self.batch_size, self.split, self.seed)


def features_path(root: str | Path, space: SearchSpace | str) -> Path:
    """Where the features of ``space`` live under ``root``."""
    return Path(root) / as_space(space).name


def requested_archs(space: SearchSpace, archs: ArchRequest, seed: int = 0) -> list[Arch]:
    """Distinct canonical architectures: a count sampled with ``seed``, a list, or None (all)."""
    if archs is None:
        try:
            archs = space.enumerate()
        except TypeError as err:
            raise ValueError(f"{err}; give a number of architectures to sample (--num-archs)") from None
    elif isinstance(archs, (int, np.integer)):
        if archs < 1:
            raise ValueError(f"number of architectures must be >= 1, got {archs}")
        archs = space.sample_unique(int(archs), seed)
    canonical = (space.canonical(space.as_arch(a)) for a in archs)
    return list(dict.fromkeys(canonical))


def extract_features(
    space: SearchSpace | str,
    archs: ArchRequest,
    root: str | Path,
    settings: FeatureSettings,
    build: Mapping[str, Any] | None = None,
    address: str | None = None,
    progress: bool = True,
    gpus_per_task: float = 0.0,
) -> tuple[list[Arch], ExtractionSummary]:
    """Features of ``archs`` into ``root/<space>/`` (resumable); returns the archs and what was done."""
    space = as_space(space)
    wanted = requested_archs(space, archs, settings.seed)
    summary = extract_to_parquet(
        space, wanted, settings.dataset, features_path(root, space), num_inits=settings.num_inits,
        batch_size=settings.batch_size, proj_dim=settings.proj_dim, address=address, seed=settings.seed,
        build=build, split=settings.split, progress=progress, gpus_per_task=gpus_per_task,
        projection=settings.projection,
    )  # fmt: skip
    return wanted, summary


# --------------------------------------------------------------------------- compatibility
def _differences(reference: Mapping[str, Any], meta: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    return [f"{k}: {reference.get(k)!r} vs {meta.get(k)!r}" for k in keys if reference.get(k) != meta.get(k)]


def check_encoder(encoder: SetEncoder, meta: Mapping[str, Any], where: str = "these features") -> None:
    """Raise ValueError unless ``encoder`` was trained on features comparable with ``meta``."""
    trained = encoder.feature_meta_
    if meta["shape"][2] != encoder.hparams["in_dim"]:
        raise ValueError(f"encoder reads P = {encoder.hparams['in_dim']} but {where} have P = {meta['shape'][2]}")
    if not trained:
        return
    differ = _differences(trained, meta, SHARED_SETTINGS)
    if differ:
        raise ValueError(
            f"encoder was trained on features with other settings than {where} (encoder vs features: "
            f"{'; '.join(differ)}); extract with the encoder's dataset, batch, projection and seed"
        )


def check_settings(encoder: SetEncoder, settings: FeatureSettings) -> None:
    """Fail before any extraction when ``settings`` cannot match what ``encoder`` was trained on."""
    if not encoder.feature_meta_:
        return
    trained = FeatureSettings.from_meta(encoder.feature_meta_)
    keys = ("dataset", "batch_size", "proj_dim", "seed", "split", "projection")
    differ = _differences(vars(trained), vars(settings), keys)
    if differ:
        raise ValueError(f"settings differ from the encoder's (encoder vs requested: {'; '.join(differ)})")


@contextlib.contextmanager
def merged_features(paths: Sequence[str | Path]) -> Iterator[Path]:
    """A temporary features directory holding links to the parts of every one of ``paths``.

    All must share :data:`SHARED_SETTINGS` and the shape ``[K, B, P]``; the merged
    ``_meta.json`` lists the spaces and their build options.
    """
    if not paths:
        raise ValueError("merged_features needs at least one features directory")
    metas = [read_meta(p) for p in paths]
    for path, meta in zip(paths[1:], metas[1:]):
        differ = _differences(metas[0], meta, (*SHARED_SETTINGS, "num_inits", "shape"))
        if differ:
            raise ValueError(f"features in {paths[0]} and {path} are not comparable ({'; '.join(differ)})")
    bases = [np.load(Path(p) / BASIS_FILE) for p in paths]
    if any(not np.array_equal(bases[0], b) for b in bases[1:]):
        raise ValueError(f"features in {list(map(str, paths))} were projected onto different bases")
    merged = {k: metas[0][k] for k in (*SHARED_SETTINGS, "num_inits", "seed", "shape") if k in metas[0]}
    merged["space"] = [m["space"] for m in metas]
    merged["build"] = {m["space"]: m["build"] for m in metas}
    with tempfile.TemporaryDirectory(prefix="raynas-features-") as tmp:
        out = Path(tmp)
        (out / META_FILE).write_text(json.dumps(merged, indent=1))
        np.save(out / BASIS_FILE, bases[0])
        parts = [part for path in paths for part in part_files(path)]
        for number, part in enumerate(parts):
            os.symlink(part.resolve(), out / f"part-{number:06d}.parquet")
        yield out


def train_shared_encoder(paths: Sequence[str | Path], **train_options: Any) -> SetEncoder:
    """One :class:`SetEncoder` trained (:func:`train_encoder`) on the union of feature directories."""
    if len(paths) == 1:
        return train_encoder(paths[0], **train_options)
    with merged_features(paths) as merged:
        return train_encoder(merged, **train_options)


# --------------------------------------------------------------------------- embedding
def iter_embeddings(
    encoder: SetEncoder, path: str | Path, batch_rows: int = 256
) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
    """Stream ``(arch strings, keys, embeddings [n, K, E])`` (one per initialisation) over a features directory."""
    meta = read_meta(path)
    check_encoder(encoder, meta, str(path))
    for part in part_files(path):
        try:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=batch_rows, columns=["arch", "key", "features"]):
                flat = batch.column(2).flatten().to_numpy(zero_copy_only=False, writable=True)
                vectors = embed(encoder, flat.reshape(-1, *meta["shape"]), per_init=True)
                yield batch.column(0).to_pylist(), batch.column(1).to_pylist(), vectors
        except (pa.ArrowException, OSError) as err:
            raise ValueError(f"part file {part} cannot be read ({err}); delete it and extract again") from err


def embed_features_dir(
    encoder: SetEncoder, path: str | Path, space: SearchSpace | str, archs: Iterable[Arch] | None = None
) -> ArchEmbeddings:
    """Embeddings of the architectures stored in ``path`` (all, or ``archs`` in that order)."""
    space = as_space(space)
    order = None if archs is None else [a.key for a in archs]
    wanted = None if order is None else set(order)
    texts: dict[str, str] = {}
    vectors: dict[str, np.ndarray] = {}
    for names, keys, batch in iter_embeddings(encoder, path):
        for text, key, vector in zip(names, keys, batch):
            if wanted is None or key in wanted:
                texts[key], vectors[key] = text, vector
    order = list(texts) if order is None else order
    missing = [k for k in order if k not in texts]
    if missing:
        raise KeyError(f"{len(missing)} architectures have no features in {path}, e.g. keys {missing[:3]}")
    dim, inits = encoder.hparams["embed_dim"], read_meta(path)["shape"][0]
    per_init = np.stack([vectors[k] for k in order]) if order else np.zeros((0, inits, dim), np.float32)
    return ArchEmbeddings(space, [space.parse(texts[k]) for k in order], per_init.mean(axis=1), per_init)


def embed_architectures(
    space: SearchSpace | str,
    archs: Iterable[Arch | str],
    dataset: str | None,
    encoder: SetEncoder,
    *,
    build: Mapping[str, Any] | None = None,
    num_inits: int | None = None,
    settings: FeatureSettings | None = None,
) -> ArchEmbeddings:
    """Embed a few architectures in this process (no Ray, nothing stored).

    Features are taken with the encoder's own settings (or ``settings`` for an encoder that
    has none recorded); ``dataset``, when given, must be the one the encoder was trained on.
    """
    space = as_space(space)
    settings = settings or FeatureSettings.from_meta(encoder.feature_meta_)
    if dataset is not None and dataset != settings.dataset:
        raise ValueError(f"encoder was trained on features of dataset {settings.dataset!r}, not {dataset!r}")
    inputs, basis, meta = _inputs_and_meta(settings)
    check_encoder(encoder, meta, f"features of {settings}")
    wanted = requested_archs(space, archs)
    features = [
        jacobian_features(
            arch, space, inputs=inputs, num_inits=num_inits or settings.num_inits, proj=basis,
            seed=settings.seed, num_classes=meta["num_classes"], build=build, projection=settings.projection,
        )  # fmt: skip
        for arch in wanted
    ]
    if not wanted:
        return ArchEmbeddings(space, wanted, np.zeros((0, encoder.hparams["embed_dim"])))
    per_init = embed(encoder, np.stack(features), per_init=True)
    return ArchEmbeddings(space, wanted, per_init.mean(axis=1), per_init)


def _inputs_and_meta(settings: FeatureSettings) -> tuple[torch.Tensor, np.ndarray, dict[str, Any]]:
    """Input batch and basis of ``settings``, and the part of a features ``_meta.json`` they fix."""
    from raynas.data import load_dataset

    data = load_dataset(settings.dataset)
    inputs = input_batch(data, settings.batch_size, settings.split, settings.seed)
    basis = input_basis(inputs, settings.proj_dim)
    options = {k: v for k, v in vars(settings).items() if k != "projection"}
    meta = {
        **options,
        **projection_meta(settings.projection),
        "inputs_sha1": hashlib.sha1(inputs.numpy().tobytes()).hexdigest(),
        "in_shape": list(inputs.shape[1:]),
        "num_classes": data.num_classes,
        "shape": [settings.num_inits, settings.batch_size, int(basis.shape[1])],
    }
    return inputs, basis, meta


def module_features(
    model: nn.Module, inputs: torch.Tensor, basis: np.ndarray | torch.Tensor, projection: str = "input"
) -> np.ndarray:
    """Projected data Jacobian of ``model``'s current weights (e.g. trained ones): ``1 x B x P``.

    The same function :func:`~predictors.jacobian.jacobian_features` applies to each random
    initialisation (BatchNorm on this batch's statistics), so the result embeds like one
    initialisation of an architecture.
    """
    basis = torch.as_tensor(np.asarray(basis, dtype=np.float32))
    return project_jacobian(data_jacobian(model, inputs), basis, projection).numpy()[None]


# --------------------------------------------------------------------------- the whole pipeline
@dataclass
class BuildSummary:
    """What one :func:`build_embeddings` call did (times in seconds)."""

    out: Path
    encoder_path: Path
    trained: bool
    spaces: dict[str, ExtractionSummary] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    loss_history: list[float] = field(default_factory=list)
    dim: int = 0
    extract_s: float = 0.0
    train_s: float = 0.0
    embed_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.extract_s + self.train_s + self.embed_s


def build_embeddings(
    spaces: Sequence[SearchSpace | str] | SearchSpace | str,
    out: str | Path,
    settings: FeatureSettings = FeatureSettings(),
    *,
    archs: ArchRequest | Mapping[str, ArchRequest] = None,
    features_root: str | Path | None = None,
    encoder: SetEncoder | str | Path | None = None,
    train: bool = False,
    train_options: Mapping[str, Any] | None = None,
    builds: Mapping[str, Mapping[str, Any]] | None = None,
    address: str | None = None,
    progress: bool = True,
    gpus_per_task: float = 0.0,
) -> BuildSummary:
    """Extract features, train or load an encoder, and write the embeddings table ``out``.

    Args:
        spaces: one space or several (one encoder, one table with a row per architecture).
        settings: the feature settings shared by every space.
        archs: per space (or a mapping space name -> request): a count to sample, a list, or None for all.
        features_root: features go to ``<root>/<space>/`` (default ``<out>.features``); reruns resume.
        encoder: a :class:`SetEncoder` or its directory (default ``<out>.encoder``); with
            ``train`` the directory the trained encoder is saved to (``<out>.encoder`` when an
            encoder object is given: it is trained further).
        train: train the encoder on the features of all ``spaces`` (``train_options`` go to
            :func:`~predictors.set_encoder.train_encoder`).
        builds: ``space.build`` options per space name.
        address: Ray address for the extraction (None: the running session, else a local one).
        gpus_per_task: GPUs each feature task asks for (a fraction shares one GPU).
    """
    spaces = [spaces] if isinstance(spaces, (str, SearchSpace)) else list(spaces)
    spaces = [as_space(s) for s in spaces]
    if not spaces:
        raise ValueError("give at least one search space")
    out = Path(out)
    root = Path(features_root) if features_root is not None else out.with_name(out.name + ".features")
    model = encoder if isinstance(encoder, SetEncoder) else None
    encoder_path = out.with_name(out.name + ".encoder") if model is not None or encoder is None else Path(encoder)
    if model is None and not train:
        model = load_encoder(encoder_path)
    if model is not None:
        check_settings(model, settings)
    summary = BuildSummary(out, encoder_path, train)
    wanted: dict[str, list[Arch]] = {}
    start = time.perf_counter()
    with ray_session(address):
        for space in spaces:
            request = archs.get(space.name) if isinstance(archs, Mapping) else archs
            build = (builds or {}).get(space.name)
            found = extract_features(space, request, root, settings, build, address, progress, gpus_per_task)
            wanted[space.name], summary.spaces[space.name] = found
            summary.counts[space.name] = len(wanted[space.name])
    summary.extract_s = time.perf_counter() - start
    paths = [features_path(root, s) for s in spaces]
    start = time.perf_counter()
    if train:
        model = train_shared_encoder(paths, **{**dict(train_options or {}), "encoder": model})
        model.save(summary.encoder_path)
        summary.loss_history = list(model.loss_history_)
    summary.train_s = time.perf_counter() - start
    start = time.perf_counter()
    tables = [embed_features_dir(model, p, s, wanted[s.name]) for p, s in zip(paths, spaces)]
    write_embeddings(tables, out)
    summary.embed_s, summary.dim = time.perf_counter() - start, model.hparams["embed_dim"]
    return summary


def load_encoder(path: str | Path) -> SetEncoder:
    """The :class:`SetEncoder` saved in ``path``, with an error that says how to get one."""
    if not Path(path).is_dir():
        raise FileNotFoundError(
            f"encoder directory {path} does not exist; train one (--train-encoder) or give a saved one (--encoder DIR)"
        )
    return SetEncoder.load(path)


def write_embeddings(tables: Sequence[ArchEmbeddings], path: str | Path) -> Path:
    """One Parquet table (``space, arch, key, embedding``) holding every table's rows."""
    if len({t.dim for t in tables}) > 1:
        raise ValueError(f"embeddings of one table must share a dimension, got {sorted({t.dim for t in tables})}")
    if len({None if t.per_init is None else t.per_init.shape[1] for t in tables}) > 1:
        tables = [ArchEmbeddings(t.space, t.archs, t.vectors) for t in tables]  # per-init vectors of all or none
    if len(tables) == 1:
        return tables[0].to_parquet(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        parts = [pq.read_table(t.to_parquet(Path(tmp) / f"{i}.parquet")) for i, t in enumerate(tables)]
    return write_parquet_atomic(pa.concat_tables(parts), path)
