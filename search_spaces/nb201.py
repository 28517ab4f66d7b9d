"""NAS-Bench-201 / NATS-Bench topology space: 6 edges x 5 ops = 15,625 cells.

Arch strings use the official format ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` and
``from_index``/``index`` use the official order (all cells in edge-major product order,
shuffled with Python's ``random.seed(88)``, as the benchmark's generator did), so the
public tables join on either.
"""
from __future__ import annotations

import itertools
import random
import re
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import networkx as nx
import numpy as np

from raynas.arch import Arch
from raynas.hashing import dag_hash
from search_spaces.base import RngLike, SearchSpace, as_rng, check_choice
from search_spaces.registry import register_space
from search_spaces.vocabulary import NB201_EDGES as EDGES
from search_spaces.vocabulary import NB201_OPS as OPS

if TYPE_CHECKING:
    from torch import nn

Spec = tuple[str, str, str, str, str, str]
CONFIG_KEYS: tuple[str, ...] = tuple(f"edge_{j}_{i}" for j, i in EDGES)
_TOKEN = re.compile(r"^([a-z0-9_]+)~(\d)$")
_SHUFFLE_SEED = 88
NUM_ARCHS = len(OPS) ** len(EDGES)
#: key shared by every cell whose output is unreachable from its input (it outputs zeros)
ZERO_CELL_KEY = "nb201-zero-cell"


def live_edges(spec: Spec) -> list[bool]:
    """Edges that carry signal from the input to the output.

    An edge is dead when its op is ``none``, when its source cannot be reached from the
    input, or when its target cannot reach the output; dead edges do not change the function.
    """
    on = [op != "none" for op in spec]
    reach_in = {0}
    for k, (j, i) in enumerate(EDGES):  # EDGES is topologically ordered by target
        if on[k] and i in reach_in:
            reach_in.add(j)
    reach_out = {3}
    for k, (j, i) in reversed(list(enumerate(EDGES))):
        if on[k] and j in reach_out:
            reach_out.add(i)
    return [on[k] and i in reach_in and j in reach_out for k, (j, i) in enumerate(EDGES)]


@lru_cache(maxsize=NUM_ARCHS)
def cell_key(spec: Spec) -> str:
    """Canonical key of a cell, cached: mutation-heavy searchers hash every neighbour (24 per
    mutation) and the space has only 15,625 cells."""
    if not any(live_edges(spec)):
        return ZERO_CELL_KEY
    return dag_hash(*op_dag(spec))


def op_dag(spec: Spec) -> tuple[np.ndarray, list[str]]:
    """Live part of the cell as a node-labelled DAG: one vertex per op, one per sum node.

    Vertices are in topological order (input, ops into node 1, node 1, ..., output), so the
    adjacency matrix is upper triangular, as :func:`raynas.hashing.dag_hash` wants.
    """
    live = live_edges(spec)
    labels = ["input"]
    node_vertex = {0: 0}
    pending: list[tuple[int, int]] = []  # (op vertex, source node)
    edges: list[tuple[int, int]] = []
    for j in (1, 2, 3):
        ins = [(k, i) for k, (jj, i) in enumerate(EDGES) if jj == j and live[k]]
        if not ins and j < 3:
            continue
        op_vertices = []
        for k, i in ins:
            labels.append(spec[k])
            op_vertices.append(len(labels) - 1)
            pending.append((len(labels) - 1, i))
        labels.append("output" if j == 3 else "sum")
        node_vertex[j] = len(labels) - 1
        edges.extend((v, node_vertex[j]) for v in op_vertices)
    edges.extend((node_vertex[i], v) for v, i in pending)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in edges:
        matrix[a, b] = 1
    return matrix, labels


@register_space("nb201")
class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space.  ``build`` gives the benchmark's CIFAR network."""

    ops: tuple[str, ...] = OPS

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> Spec:
        nodes = text.split("+")
        if len(nodes) != 3:
            raise ValueError(
                f"NB201 arch string {text!r} must have 3 nodes joined by '+', got {len(nodes)}; "
                "expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
            )
        spec: list[str] = []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ValueError(f"NB201 node {j} {node!r} must start and end with '|'")
            tokens = node[1:-1].split("|")
            if len(tokens) != j:
                raise ValueError(f"NB201 node {j} {node!r} needs {j} edges, got {len(tokens)}")
            for i, token in enumerate(tokens):
                match = _TOKEN.match(token)
                if not match:
                    raise ValueError(f"NB201 edge {token!r} of node {j} must look like 'op~{i}'")
                op, src = match.group(1), int(match.group(2))
                if src != i:
                    raise ValueError(f"NB201 edge {token!r} of node {j}: input must be {i}, got {src}")
                spec.append(check_choice(f"edge {j}<-{i} op", op, self.ops))
        return tuple(spec)  # type: ignore[return-value]

    def _format(self, spec: Spec) -> str:
        parts, k = [], 0
        for j in (1, 2, 3):
            parts.append("|" + "|".join(f"{spec[k + i]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(parts)

    def _validate(self, spec: Spec) -> None:
        if not isinstance(spec, tuple) or len(spec) != len(EDGES):
            raise ValueError(f"NB201 spec must be a tuple of {len(EDGES)} ops, got {spec!r}")
        for key, op in zip(CONFIG_KEYS, spec):
            check_choice(key, op, self.ops)

    def _key(self, spec: Spec) -> str:
        return cell_key(spec)

    def _canonical_spec(self, spec: Spec) -> Spec:
        """Dead edges set to ``none``; of the two orders of nodes 1 and 2 (equivalent when
        there is no edge 2<-1), the lexicographically smaller."""
        live = live_edges(spec)
        pruned = tuple(op if on else "none" for op, on in zip(spec, live))
        if pruned[2] != "none":
            return pruned  # type: ignore[return-value]
        a10, a20, _, a30, a31, a32 = pruned
        swapped = (a20, a10, "none", a30, a32, a31)
        return min(pruned, swapped)  # type: ignore[return-value]

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        return tuple(check_choice(k, config[k], self.ops) for k in CONFIG_KEYS)  # type: ignore[return-value]

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        return dict(zip(CONFIG_KEYS, spec))

    # ------------------------------------------------------------------ Tune side
    def tune_space(self) -> dict[str, Any]:
        from ray import tune

        return {k: tune.choice(list(self.ops)) for k in CONFIG_KEYS}

    # ------------------------------------------------------------------ official index
    @cached_property
    def _index_order(self) -> list[Spec]:
        order = list(itertools.product(self.ops, repeat=len(EDGES)))
        random.Random(_SHUFFLE_SEED).shuffle(order)
        return order  # type: ignore[return-value]

    @cached_property
    def _index_of(self) -> dict[Spec, int]:
        return {spec: i for i, spec in enumerate(self._index_order)}

    def from_index(self, index: int) -> Arch:
        """Arch with the official NB201 / NATS-Bench topology index ``index``."""
        if not 0 <= int(index) < NUM_ARCHS:
            raise ValueError(f"NB201 index must be in [0, {NUM_ARCHS}), got {index}")
        return self.make(self._index_order[int(index)])

    def index(self, arch: Arch) -> int:
        """Official index of ``arch`` as written (not of its canonical representative)."""
        return self._index_of[self._own(arch).spec]

    def enumerate(self) -> Iterator[Arch]:
        """All 15,625 cells in the official index order."""
        return (self.make(spec) for spec in self._index_order)

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        rng = as_rng(rng)
        return self.make(tuple(self.ops[i] for i in rng.integers(len(self.ops), size=len(EDGES))))

    def neighbors(self, arch: Arch) -> list[Arch]:
        spec = self._own(arch).spec
        edits = (spec[:k] + (op,) + spec[k + 1 :] for k, op in itertools.product(range(len(EDGES)), self.ops) if op != spec[k])
        return self._moves(arch, edits)

    # ------------------------------------------------------------------ networks
    def build(
        self,
        arch: Arch,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        C: int = 16,
        N: int = 5,
        **build: Any,
    ) -> nn.Module:
        """The NB201 network (defaults: the benchmark's C=16, N=5)."""
        self._check_build("NB201", build, ("C", "N"), num_classes, in_shape)
        from search_spaces.nb201_net import NB201Network

        return NB201Network(self._own(arch).spec, num_classes=num_classes, in_channels=in_shape[0], C=C, N=N)

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """Live cell as an op-labelled DAG (ops as vertices, sums as ``sum`` vertices)."""
        matrix, labels = op_dag(self._own(arch).spec)
        graph = nx.DiGraph()
        graph.add_nodes_from((v, {"op": label}) for v, label in enumerate(labels))
        graph.add_edges_from(zip(*np.nonzero(matrix)))
        return graph
