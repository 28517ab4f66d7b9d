"""Jacobian features of many architectures, computed as Ray tasks and streamed to Parquet.

``extract_to_parquet`` puts the input batch, the projection basis and the space into the
object store once, runs one Ray task per architecture (one CPU, one torch thread each), and
writes every ``chunk`` finished architectures as their own part file, so memory holds at most
``chunk`` results plus the tasks in flight.  The output is a directory dataset::

    features.parquet/_meta.json           settings of the extraction (checked on resume)
    features.parquet/_basis.npy           the shared D x P projection basis (reused on resume)
    features.parquet/part-000000.parquet  one part per finished chunk, written atomically

Columns: ``space``, ``arch`` (``str`` of the canonical architecture the features were computed
on), ``key`` (its canonical key, unique in the dataset) and ``features``, a
``fixed_size_list<float32>[K*B*P]`` whose shape ``[K, B, P]`` is in the schema metadata
(``raynas.jacobian.shape``).  Read it with :func:`read_features` or stream it with
:func:`iter_features`; ``pyarrow.dataset.dataset(path)`` also works (it ignores the ``_`` files).

**Crashes and resume.**  A part is written to a hidden temporary file and renamed, so a part
file is either complete or absent; when a task fails or the driver is interrupted, the
finished results in memory are written before the error propagates.  A rerun with the same
settings skips every key already stored and computes the rest; a rerun with different settings
is refused (the message names what differs).  A part file that cannot be read (damaged after
it was written) stops the run with an error naming the file: delete it and rerun, and its
architectures are recomputed.  Two runs must not write into one directory at the same time.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from predictors.jacobian import check_projection, input_basis, input_batch, jacobian_features
from raynas.arch import Arch
from raynas.data import ImageDataset, as_dataset
from raynas.io import atomic_write, write_parquet_atomic
from raynas.devices import trial_device
from raynas.parallel import ray_session, use_allotted_threads
from raynas.progress import progress_bar
from search_spaces import SearchSpace, as_space

SHAPE_KEY = b"raynas.jacobian.shape"
META_FILE = "_meta.json"
BASIS_FILE = "_basis.npy"
PART_GLOB = "part-*.parquet"


@dataclass(frozen=True)
class ExtractionSummary:
    """What one ``extract_to_parquet`` call did."""

    path: Path
    written: int  # architectures computed and stored by this call
    already_stored: int  # skipped because their key was in the dataset already
    duplicates: int  # skipped because an isomorphic architecture came earlier in the input


def extract_to_parquet(
    space: SearchSpace | str,
    archs_or_count: Iterable[Arch | str] | int | None,
    dataset: str | ImageDataset,
    out_path: str | Path,
    num_inits: int = 4,
    batch_size: int = 256,
    proj_dim: int = 128,
    address: str | None = None,
    chunk: int = 64,
    seed: int = 0,
    build: Mapping[str, Any] | None = None,
    split: str = "train",
    progress: bool = True,
    gpus_per_task: float = 0.0,
    projection: str = "input",
) -> ExtractionSummary:
    """Compute and store the Jacobian features of many architectures (resumable).

    Args:
        space: search space object or registered name.
        archs_or_count: architectures (Arch or strings), a count of distinct architectures to
            sample with ``seed``, or None for every architecture of a finite space.
        dataset: where the input batch comes from: a :func:`raynas.data.load_dataset` spec
            (``"digits"``, ``"cifar10:/path"``) or a loaded dataset.
        out_path: the dataset directory (created; resumed when it exists).
        num_inits, batch_size, proj_dim: ``K``, ``B`` and ``P`` (see :mod:`predictors.jacobian`).
        address: Ray address to join when no Ray session is running (None: start a local
            one, shut down afterwards); a running session is used as it is.
        chunk: architectures per part file.
        seed: picks the input images, the sampled architectures and the initialisations.
        build: keyword options of ``space.build`` (e.g. ``{"C": 8, "N": 1}``).
        split: dataset split the input images come from.
        progress: show a progress bar on stderr.
        gpus_per_task: GPUs each feature task asks Ray for (fractions share one GPU); a task
            given a GPU computes there.
        projection: ``"input"`` (the shared input basis) or ``"svd"`` (per matrix, as published).
    """
    space = as_space(space)
    for name, value in {"num_inits": num_inits, "batch_size": batch_size, "chunk": chunk}.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if int(proj_dim) < 1:
        raise ValueError(f"projection dimension P (proj_dim) must be >= 1, got {proj_dim!r}")
    data = as_dataset(dataset)
    inputs = input_batch(data, batch_size, split, seed)
    out = Path(out_path)
    meta = {
        "space": space.name,
        "dataset": dataset if isinstance(dataset, str) else data.name,
        "split": split,
        "inputs_sha1": hashlib.sha1(inputs.numpy().tobytes()).hexdigest(),
        "in_shape": list(inputs.shape[1:]),
        "num_classes": data.num_classes,
        "num_inits": int(num_inits),
        "batch_size": int(batch_size),
        "proj_dim": int(proj_dim),
        "seed": int(seed),
        "build": dict(build or {}),
    }
    meta.update(projection_meta(projection))
    meta = json.loads(json.dumps(meta))  # as it reads back from _meta.json (tuples -> lists)
    basis = _prepare_directory(out, meta, inputs)
    meta["shape"] = [int(num_inits), int(batch_size), int(basis.shape[1])]
    stored = stored_keys(out)
    todo, duplicates, already = _plan(space, archs_or_count, seed, stored)

    with ray_session(address):
        writer = _extract(space, todo, out, meta, inputs, basis, chunk, progress, gpus_per_task)
    return ExtractionSummary(out, writer.rows, already, duplicates)


def projection_meta(projection: str) -> dict[str, str]:
    """How a features ``_meta.json`` records the projection: absent for the default (so
    directories written before the option existed still resume), else by name."""
    return {} if check_projection(projection) == "input" else {"projection": projection}


def _extract(
    space: SearchSpace, todo: list[Arch], out: Path, meta: dict, inputs: torch.Tensor, basis: np.ndarray, chunk: int,
    progress: bool, gpus_per_task: float,
) -> "_PartWriter":
    """Run the feature tasks of ``todo`` (at most two per cluster CPU in flight) and stream
    the results to part files in the order of ``todo``, whatever order the tasks finish in:
    the encoder is trained on the parts as stored, so the same request must store the same
    rows in the same order (one seed, one answer).  Finished results are written before any
    error propagates."""
    import ray

    refs = {name: ray.put(value) for name, value in (("space", space), ("inputs", inputs), ("basis", torch.from_numpy(basis)))}
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_task)(_extract_one)
    in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    writer = _PartWriter(out, meta, chunk)
    pending: dict[Any, tuple[int, Arch]] = {}
    finished: dict[int, tuple[Arch, np.ndarray]] = {}  # results that wait for an earlier one
    queue = enumerate(todo)
    written = 0
    bar = progress_bar(len(todo), "jacobian features", "arch", progress)
    try:
        while True:
            while len(pending) < in_flight and len(finished) < in_flight and (item := next(queue, None)) is not None:
                pending[task.remote(refs["space"], item[1].text, refs["inputs"], refs["basis"], meta)] = item
            if not pending:
                break
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            index, arch = pending.pop(ready)
            try:
                finished[index] = (arch, ray.get(ready))
            except Exception as err:
                _keep_finished(pending, finished)
                raise RuntimeError(
                    f"extracting features of {space.name} arch {arch} failed; finished architectures are "
                    f"kept in {out}, rerun to resume: {err}"
                ) from err
            while written in finished:
                writer.add(*finished.pop(written))
                written += 1
            bar.update(1)
    finally:
        for ref in pending:
            ray.cancel(ref)
        for index in sorted(finished):  # only after an error: keep every finished result
            writer.add(*finished[index])
        writer.flush()
        bar.close()
    return writer


def _keep_finished(pending: dict[Any, tuple[int, Arch]], finished: dict[int, tuple[Arch, np.ndarray]]) -> None:
    """Move the tasks that already succeeded out of ``pending`` into ``finished``."""
    import ray

    ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
    for ref in ready:
        index, arch = pending.pop(ref)
        try:
            finished[index] = (arch, ray.get(ref))
        except Exception:  # noqa: BLE001 -- another failure; the first one is reported
            continue


def _extract_one(space: SearchSpace, text: str, inputs: torch.Tensor, basis: torch.Tensor, meta: dict) -> np.ndarray:
    """Ray task: features of one (canonical) architecture, on the CPU (or GPU) Ray gave this task."""
    use_allotted_threads()
    return jacobian_features(
        space.parse(text),
        space,
        inputs=inputs,
        num_inits=meta["num_inits"],
        proj=basis,
        seed=meta["seed"],
        num_classes=meta["num_classes"],
        build=meta["build"],
        device=trial_device(),
        projection=meta.get("projection", "input"),
    )


def _plan(
    space: SearchSpace, archs_or_count: Iterable[Arch | str] | int | None, seed: int, stored: set[str]
) -> tuple[list[Arch], int, int]:
    """Canonical architectures still to compute, and how many were duplicates / stored."""
    if archs_or_count is None:
        archs: Iterable[Arch | str] = space.enumerate()
    elif isinstance(archs_or_count, (int, np.integer)):
        if archs_or_count < 0:
            raise ValueError(f"architecture count must be >= 0, got {archs_or_count}")
        archs = space.sample_unique(int(archs_or_count), seed)
    else:
        archs = archs_or_count
    todo: dict[str, Arch] = {}
    duplicates = already = 0
    for item in archs:
        arch = space.canonical(space.as_arch(item))
        if arch.key in stored:
            already += 1
        elif arch.key in todo:
            duplicates += 1
        else:
            todo[arch.key] = arch
    return list(todo.values()), duplicates, already


def _prepare_directory(out: Path, meta: dict, inputs: torch.Tensor) -> np.ndarray:
    """Create ``out`` with its settings and basis, or check a resumed one; return the basis."""
    meta_path, basis_path = out / META_FILE, out / BASIS_FILE
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory; the features are a directory of part files")
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        old.pop("shape", None)
        differ = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
        if differ:
            details = "; ".join(f"{k}: stored {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise ValueError(f"{out} holds features extracted with other settings ({details}); use another out_path")
        if not basis_path.exists():
            raise FileNotFoundError(f"{basis_path} is missing; the features in {out} cannot be extended consistently")
        return np.load(basis_path)
    if any(out.glob(PART_GLOB)):
        raise ValueError(f"{out} has part files but no {META_FILE}; it was not written by extract_to_parquet")
    out.mkdir(parents=True, exist_ok=True)
    basis = input_basis(inputs, meta["proj_dim"])
    buffer = io.BytesIO()
    np.save(buffer, basis)
    atomic_write(basis_path, buffer.getvalue())
    shape = [meta["num_inits"], meta["batch_size"], int(basis.shape[1])]
    atomic_write(meta_path, json.dumps({**meta, "shape": shape}, indent=1))
    return basis


class _PartWriter:
    """Buffers finished results and writes each full chunk as the next part file."""

    def __init__(self, out: Path, meta: dict, chunk: int):
        self.out, self.meta, self.chunk, self.rows = out, meta, int(chunk), 0
        self.buffer: list[tuple[Arch, np.ndarray]] = []
        numbers = [int(p.stem.split("-")[1]) for p in out.glob(PART_GLOB)]
        self.next_part = max(numbers, default=-1) + 1
        self.schema = pa.schema(
            [
                ("space", pa.string()),
                ("arch", pa.string()),
                ("key", pa.string()),
                ("features", pa.list_(pa.float32(), int(np.prod(meta["shape"])))),
            ],
            metadata={SHAPE_KEY: json.dumps(meta["shape"]).encode()},
        )

    def add(self, arch: Arch, features: np.ndarray) -> None:
        if list(features.shape) != self.meta["shape"]:
            raise ValueError(f"features of {arch} have shape {features.shape}, expected {self.meta['shape']}")
        self.buffer.append((arch, features))
        if len(self.buffer) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        archs, feats = zip(*self.buffer)
        flat = pa.array(np.stack(feats).reshape(-1), type=pa.float32())
        table = pa.Table.from_arrays(
            [
                pa.array([a.space for a in archs], pa.string()),
                pa.array([a.text for a in archs], pa.string()),
                pa.array([a.key for a in archs], pa.string()),
                pa.FixedSizeListArray.from_arrays(flat, self.schema.field("features").type.list_size),
            ],
            schema=self.schema,
        )
        write_parquet_atomic(table, self.out / f"part-{self.next_part:06d}.parquet")
        self.next_part += 1
        self.rows += len(archs)
        self.buffer = []


# --------------------------------------------------------------------------- reading
def part_files(path: str | Path) -> list[Path]:
    """The part files of a features directory, in write order."""
    path = Path(path)
    if not (path / META_FILE).exists():
        raise FileNotFoundError(f"{path} is not a Jacobian features directory (no {META_FILE}); run extract_to_parquet first")
    return sorted(path.glob(PART_GLOB))


def read_meta(path: str | Path) -> dict:
    """Settings the features in ``path`` were extracted with (``shape`` is ``[K, B, P]``)."""
    part_files(path)
    return json.loads((Path(path) / META_FILE).read_text())


def _read_part(part: Path, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(part, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(
            f"part file {part} cannot be read ({err}); delete it and rerun extract_to_parquet "
            "to recompute its architectures"
        ) from err


def stored_keys(path: str | Path) -> set[str]:
    """Canonical keys already stored in ``path`` (empty when it does not exist yet)."""
    if not Path(path, META_FILE).exists():
        return set()
    return {k for part in part_files(path) for k in _read_part(part, ["key"]).column("key").to_pylist()}


def _features_array(column: pa.ChunkedArray | pa.Array, shape: list[int]) -> np.ndarray:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, *shape)


def iter_features(
    path: str | Path, batch_rows: int = 256, seed: int | None = None, shuffle_rows: int | None = None
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Stream ``(keys, features [n, K, B, P])`` batches of at most ``batch_rows`` rows.

    With ``seed``, parts are read in a random order and rows pass through a shuffle buffer of
    ``shuffle_rows`` rows (default ``4 * batch_rows``), so memory stays bounded.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    shape = read_meta(path)["shape"]
    parts = part_files(path)
    rng = np.random.default_rng(seed) if seed is not None else None
    if rng is not None:
        parts = [parts[i] for i in rng.permutation(len(parts))]
    capacity = batch_rows if rng is None else max(batch_rows, shuffle_rows or 4 * batch_rows)
    keys: list[str] = []
    feats: list[np.ndarray] = []
    for part in parts:
        table = _read_part(part, ["key", "features"])
        keys.extend(table.column("key").to_pylist())
        feats.extend(_features_array(table.column("features"), shape))
        while len(keys) >= capacity:
            yield _take(keys, feats, batch_rows, rng)
    while keys:
        yield _take(keys, feats, batch_rows, rng)


def _take(keys: list[str], feats: list[np.ndarray], n: int, rng: np.random.Generator | None) -> tuple[list[str], np.ndarray]:
    """Remove ``n`` rows (random ones with ``rng``) from the buffers and return them."""
    n = min(n, len(keys))
    pick = sorted(rng.choice(len(keys), n, replace=False).tolist()) if rng is not None else list(range(n))
    out_keys, out_feats = [keys[i] for i in pick], np.stack([feats[i] for i in pick])
    for i in reversed(pick):
        keys[i] = keys[-1]
        feats[i] = feats[-1]
        keys.pop()
        feats.pop()
    return out_keys, out_feats


def read_features(path: str | Path, keys: Iterable[str] | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """``(keys, arch strings, features [N, K, B, P])`` of all rows, or of ``keys`` in that order."""
    shape = read_meta(path)["shape"]
    wanted = None if keys is None else list(keys)
    found: dict[str, tuple[str, np.ndarray]] = {}
    for part in part_files(path):
        table = _read_part(part, ["key", "arch", "features"])
        if wanted is not None:
            table = table.filter(pc.is_in(table.column("key"), pa.array(wanted, pa.string())))
        for key, arch, feat in zip(
            table.column("key").to_pylist(), table.column("arch").to_pylist(), _features_array(table.column("features"), shape)
        ):
            found[key] = (arch, feat)
    order = list(found) if wanted is None else wanted
    missing = [k for k in order if k not in found]
    if missing:
        raise KeyError(f"{len(missing)} keys are not stored in {path}, e.g. {missing[:3]}")
    empty = np.zeros((0, *shape), dtype=np.float32)
    return order, [found[k][0] for k in order], np.stack([found[k][1] for k in order]) if order else empty
