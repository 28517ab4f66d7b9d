"""Computation graphs for predictors: from Arch values, modules or traced graphs, cached, streamed.

Tracing (build the network, run torch.fx, label every operator) is the slow part of reading a
CG, so graphs of :class:`~raynas.arch.Arch` values are cached under a key made of the space,
the canonical key (isomorphic cells share one graph), the build options and the input shape:
in memory (least recently used first out, at most ``max_items``) and, with a ``directory``, in
Parquet shards that later sessions reuse.  Many graphs to trace at once go to Ray tasks.
Graphs are held packed (op index ``int8``, numeric features ``float32``, edges ``int32``) and
turned back into :class:`~torch_geometric.data.Data` batch by batch.

An Arch is built with ``DEFAULT_BUILD[space]`` unless the caller gives build options: a
reduced network of the same cells (one cell per stage, 16 base channels), which keeps each
space's graph structure at a fraction of the full network's tracing time.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from raynas.arch import Arch
from raynas.graph import ComputationGraph, TraceError, trace
from raynas.graph_features import NUM_NODE_FEATURES, OP_TYPES
from raynas.io import write_parquet_atomic
from raynas.parallel import ray_session
from raynas.progress import progress_bar
from search_spaces import SearchSpace, as_space

#: build options per space for Arch inputs: cell spaces one cell per stage with 16 base channels,
#: MobileNetV3 (no repeated cells to drop) at half width; a space not listed is built with its
#: own defaults
DEFAULT_BUILD: dict[str, dict[str, Any]] = {
    "nb201": {"C": 16, "N": 1},
    "nb101": {"stem_channels": 16, "num_modules_per_stack": 1},
    "darts": {"C": 16, "layers": 5},
    "mobilenetv3": {"width": 0.5},
}
INPUT_SHAPE = (1, 3, 32, 32)
Packed = tuple[np.ndarray, np.ndarray, np.ndarray, int, int]
_NUM_OPS = len(OP_TYPES)
_SCHEMA = pa.schema(
    [("key", pa.string()), ("op", pa.binary()), ("numeric", pa.binary()), ("edges", pa.binary()),
     ("params", pa.int64()), ("flops", pa.int64())]
)  # fmt: skip


def pack(data: Data) -> Packed:
    """Compact form of a graph from :meth:`~raynas.graph.ComputationGraph.to_pyg`."""
    x = data.x.numpy()
    return (
        np.argmax(x[:, :_NUM_OPS], axis=1).astype(np.int8),
        np.ascontiguousarray(x[:, _NUM_OPS:], dtype=np.float32),
        data.edge_index.numpy().astype(np.int32),
        int(data.params.reshape(-1)[0]),
        int(data.flops.reshape(-1)[0]),
    )


def unpack(packed: Packed) -> Data:
    """The :class:`~torch_geometric.data.Data` of :func:`pack`'s output."""
    ops, numeric, edges, params, flops = packed
    onehot = torch.nn.functional.one_hot(torch.from_numpy(ops.astype(np.int64)), _NUM_OPS).float()
    return Data(
        x=torch.cat([onehot, torch.from_numpy(np.array(numeric, dtype=np.float32))], dim=1),
        edge_index=torch.from_numpy(edges.astype(np.int64)).reshape(2, -1),
        params=torch.tensor([params]),
        flops=torch.tensor([flops]),
        num_nodes=len(ops),
    )


def build_options(space: str, builds: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """Build options of ``space``: ``builds[space]`` if given, else :data:`DEFAULT_BUILD`'s."""
    if builds is not None and space in builds:
        return dict(builds[space])
    return dict(DEFAULT_BUILD.get(space, {}))


def graph_key(arch: Arch, options: Mapping[str, Any], input_shape: Sequence[int]) -> str:
    """Cache key of ``arch``'s graph: space, canonical key and a digest of build options and shape."""
    digest = hashlib.sha1(json.dumps([sorted(options.items()), list(input_shape)], default=str).encode()).hexdigest()
    return f"{arch.space}:{arch.key}:{digest[:12]}"


def trace_arch(space: SearchSpace | str, text: str, options: Mapping[str, Any], input_shape: Sequence[int]) -> Packed:
    """Build the canonical network of the arch written ``text`` in ``space`` and trace it."""
    sp = as_space(space)
    model = sp.build(sp.canonical(sp.parse(text)), num_classes=10, in_shape=tuple(input_shape[1:]), **options)
    return pack(trace(model, input_shape).to_pyg())


def _trace_chunk(
    space: SearchSpace, texts: list[str], options: dict[str, Any], input_shape: tuple[int, ...]
) -> list[Packed]:
    torch.set_num_threads(1)
    return [trace_arch(space, t, options, input_shape) for t in texts]


def check_graph(data: Data) -> Data:
    x = getattr(data, "x", None)
    if x is None or x.dim() != 2 or x.shape[1] != NUM_NODE_FEATURES or not hasattr(data, "params"):
        raise ValueError(
            f"a Data graph must come from raynas.graph (ComputationGraph.to_pyg(): x of N x {NUM_NODE_FEATURES}, "
            f"params, flops); got x of shape {None if x is None else tuple(x.shape)}"
        )
    return data


def item_graph(item: Any, input_shape: Sequence[int]) -> Data:
    """Graph of one non-Arch input: an ``nn.Module`` (traced), a ComputationGraph or a Data,
    reduced to the attributes cached graphs have, so that both kinds batch together."""
    if isinstance(item, nn.Module):
        return unpack(pack(trace(item, input_shape).to_pyg()))
    if isinstance(item, ComputationGraph):
        return unpack(pack(item.to_pyg()))
    if isinstance(item, Data):
        return unpack(pack(check_graph(item)))
    raise ValueError(
        f"cannot read a computation graph from {type(item).__name__}; give a raynas Arch, a torch.nn.Module, "
        f"a raynas.graph.ComputationGraph or its to_pyg() Data"
    )


class GraphCache:
    """Packed graphs by key: an LRU dict in memory, optionally backed by Parquet shards in ``directory``."""

    def __init__(self, directory: str | Path | None = None, max_items: int = 20_000):
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items!r}")
        self.directory = Path(directory) if directory is not None else None
        self.max_items = max_items
        self._memory: OrderedDict[str, Packed] = OrderedDict()
        self._on_disk: dict[str, tuple[Path, int]] = {}
        self._shard: tuple[Path | None, dict[str, list[Any]]] = (None, {})
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            for shard in sorted(self.directory.glob("graphs-*.parquet")):
                keys = pq.read_table(shard, columns=["key"]).column("key").to_pylist()
                self._on_disk.update((k, (shard, row)) for row, k in enumerate(keys))

    def __contains__(self, key: str) -> bool:
        return key in self._memory or key in self._on_disk

    def __len__(self) -> int:
        return len(self._memory.keys() | self._on_disk.keys())

    def get(self, key: str) -> Packed | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        if key not in self._on_disk:
            return None
        shard, row = self._on_disk[key]
        if self._shard[0] != shard:
            self._shard = (shard, pq.read_table(shard).to_pydict())
        rec = {name: column[row] for name, column in self._shard[1].items()}
        packed = (
            np.frombuffer(rec["op"], dtype=np.int8).copy(),
            np.frombuffer(rec["numeric"], dtype=np.float32).reshape(-1, NUM_NODE_FEATURES - _NUM_OPS).copy(),
            np.frombuffer(rec["edges"], dtype=np.int32).reshape(2, -1).copy(),
            rec["params"],
            rec["flops"],
        )
        self._remember(key, packed)
        return packed

    def put_many(self, graphs: Mapping[str, Packed]) -> None:
        """Add graphs; with a directory they are also written as one new shard."""
        for key, packed in graphs.items():
            self._remember(key, packed)
        fresh = {k: v for k, v in graphs.items() if k not in self._on_disk}
        if self.directory is None or not fresh:
            return
        table = pa.table(
            {
                "key": list(fresh),
                "op": [p[0].tobytes() for p in fresh.values()],
                "numeric": [p[1].tobytes() for p in fresh.values()],
                "edges": [p[2].tobytes() for p in fresh.values()],
                "params": [p[3] for p in fresh.values()],
                "flops": [p[4] for p in fresh.values()],
            },
            schema=_SCHEMA,
        )
        shard = self.directory / f"graphs-{len(list(self.directory.glob('graphs-*.parquet'))):05d}-{os.getpid()}.parquet"
        write_parquet_atomic(table, shard)
        self._on_disk.update((k, (shard, row)) for row, k in enumerate(fresh))

    def _remember(self, key: str, packed: Packed) -> None:
        self._memory[key] = packed
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)


class GraphReader:
    """Turns predictor inputs into graphs, tracing what the cache lacks (in Ray tasks when many).

    Args:
        builds: build options per space for Arch inputs (missing spaces use :data:`DEFAULT_BUILD`).
        input_shape: input the networks are traced on, batch first.
        cache: where graphs of Arch values are kept.
        use_ray: ``"auto"`` (Ray tasks when at least ``ray_min`` graphs are missing), ``True`` or ``False``.
        ray_min, ray_chunk: threshold for Ray and architectures per Ray task.
    """

    def __init__(
        self,
        builds: Mapping[str, Mapping[str, Any]] | None = None,
        input_shape: Sequence[int] = INPUT_SHAPE,
        cache: GraphCache | None = None,
        use_ray: bool | str = "auto",
        ray_min: int = 512,
        ray_chunk: int = 32,
        progress: bool = False,
    ):
        if use_ray not in (True, False, "auto"):
            raise ValueError(f"use_ray must be True, False or 'auto', got {use_ray!r}")
        self.builds = {k: dict(v) for k, v in (builds or {}).items()}
        self.input_shape = tuple(input_shape)
        self.cache = cache if cache is not None else GraphCache()
        self.use_ray, self.ray_min, self.ray_chunk = use_ray, int(ray_min), int(ray_chunk)
        self.progress = progress

    def key(self, arch: Arch) -> str:
        return graph_key(arch, build_options(arch.space, self.builds), self.input_shape)

    def graphs(self, items: Sequence[Any]) -> list[Data]:
        """Graphs of ``items`` (all in memory: use :meth:`batches` for many)."""
        self.prepare(items)
        return [self._one(item) for item in items]

    def batches(self, items: Sequence[Any], batch_size: int = 256, chunk: int = 2048) -> Iterator[Batch]:
        """Batches of ``batch_size`` graphs in the order of ``items``, tracing ``chunk`` at a time
        (in one Ray session for all chunks, started only when a chunk needs Ray)."""
        with ray_session(start=False):
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                self.prepare(part)
                for b in range(0, len(part), batch_size):
                    yield Batch.from_data_list([self._one(item) for item in part[b : b + batch_size]])

    def prepare(self, items: Iterable[Any]) -> None:
        """Trace and cache the graphs of the Arch values among ``items`` that the cache lacks."""
        missing: dict[str, Arch] = {}
        for item in items:
            if isinstance(item, Arch):
                key = self.key(item)
                if key not in self.cache and key not in missing:
                    missing[key] = item
        if not missing:
            return
        parallel = self.use_ray is True or (self.use_ray == "auto" and len(missing) >= self.ray_min)
        traced = self._trace_ray(missing) if parallel else self._trace_here(missing)
        self.cache.put_many(traced)

    def _one(self, item: Any) -> Data:
        if isinstance(item, Arch):
            packed = self.cache.get(self.key(item))
            if packed is None:
                self.prepare([item])
                packed = self.cache.get(self.key(item))
            return unpack(packed)  # type: ignore[arg-type]
        return item_graph(item, self.input_shape)

    def _trace_here(self, missing: Mapping[str, Arch]) -> dict[str, Packed]:
        out = {}
        for key, arch in progress_bar(missing.items(), "tracing graphs", "graph", self.progress, len(missing)):
            options = build_options(arch.space, self.builds)
            try:
                out[key] = trace_arch(arch.space, arch.text, options, self.input_shape)
            except (TraceError, TypeError) as err:
                raise ValueError(f"tracing {arch.space} arch {arch} built with {options} failed: {err}") from err
        return out

    def _trace_ray(self, missing: Mapping[str, Arch]) -> dict[str, Packed]:
        import ray

        with ray_session():
            task = ray.remote(num_cpus=1)(_trace_chunk)
            keys = list(missing)
            refs = []
            spaces = {name: ray.put(as_space(name)) for name in {arch.space for arch in missing.values()}}  # the objects, not names
            for start in range(0, len(keys), self.ray_chunk):
                part = keys[start : start + self.ray_chunk]
                groups: dict[str, list[str]] = {}
                for k in part:
                    groups.setdefault(missing[k].space, []).append(k)
                for space, ks in groups.items():
                    options = build_options(space, self.builds)
                    refs.append((ks, task.remote(spaces[space], [missing[k].text for k in ks], options, self.input_shape)))
            out: dict[str, Packed] = {}
            for ks, ref in progress_bar(refs, f"tracing {len(missing)} graphs in Ray tasks", "task", self.progress):
                try:
                    out.update(zip(ks, ray.get(ref)))
                except Exception as err:
                    raise ValueError(f"tracing {missing[ks[0]].space} archs in a Ray task failed: {err}") from err
            return out
