"""NAS-Bench-101: cells of at most 7 vertices and 9 edges, 423,624 unique cells.

A spec is ``(matrix, ops)``: an upper-triangular 0/1 adjacency matrix (row = from, column =
to) as a tuple of tuples, and the vertex ops, ``input`` first and ``output`` last.  Cells
may have fewer than 7 vertices and may hold vertices that are not on an input->output path;
those are pruned (NB101's ``ModelSpec._prune``) before the edge limit is checked, before
hashing and before building, exactly as the benchmark does.

The string form lists the matrix rows, ``/``-separated, then the ops::

    adj=0110000/0001000/0000100/0000010/0000001/0000001/0000000;ops=input,conv3x3-bn-relu,...,output

The key is the official NB101 spec hash of the pruned cell, so tables keyed by that hash
join directly.  Tune configs are flat and always describe 7 vertices: 21 edge bits
``adj_<i>_<j>`` (i < j) and ``op_1`` .. ``op_5``.
"""
from __future__ import annotations

import itertools
import numbers
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import networkx as nx
import numpy as np

from raynas.arch import Arch
from raynas.hashing import dag_hash
from search_spaces.base import RngLike, SearchSpace, as_rng, check_choice
from search_spaces.registry import register_space
from search_spaces.vocabulary import NB101_OPS as OPS

if TYPE_CHECKING:
    from torch import nn

Matrix = tuple[tuple[int, ...], ...]
Spec = tuple[Matrix, tuple[str, ...]]

NUM_VERTICES = 7
MAX_EDGES = 9
NUM_CELLS = 423_624
EDGES: tuple[tuple[int, int], ...] = tuple(itertools.combinations(range(NUM_VERTICES), 2))
EDGE_KEYS: tuple[str, ...] = tuple(f"adj_{i}_{j}" for i, j in EDGES)
OP_KEYS: tuple[str, ...] = tuple(f"op_{v}" for v in range(1, NUM_VERTICES - 1))
CONFIG_KEYS: tuple[str, ...] = EDGE_KEYS + OP_KEYS
#: op a padding vertex gets when a smaller cell is written with 7 vertices (it has no edges)
PAD_OP = OPS[0]
_HASH_LABEL = {op: i for i, op in enumerate(OPS)} | {"input": -1, "output": -2}
_NO_PATH = "adj: the input does not reach the output; a cell needs an input->output path"


def prune(matrix: Matrix, ops: Sequence[str]) -> Spec | None:
    """Drop vertices not on an input->output path (NB101's rule); None if the input cannot
    reach the output.  Works on a well-formed spec (see :meth:`NB101Space._validate`)."""
    n = len(matrix)
    from_input, from_output = {0}, {n - 1}
    for v in range(1, n):
        if any(matrix[u][v] for u in from_input if u < v):
            from_input.add(v)
    for v in range(n - 2, -1, -1):
        if any(matrix[v][w] for w in from_output if w > v):
            from_output.add(v)
    keep = sorted(from_input & from_output)
    if 0 not in keep or n - 1 not in keep:
        return None
    return tuple(tuple(matrix[a][b] for b in keep) for a in keep), tuple(ops[v] for v in keep)


def as_rows(matrix: Any) -> Matrix:
    """Hashable matrix from any nested sequence or array (tables store numpy arrays).

    Entries must be integers (or floats equal to) 0 or 1: truncating with ``int()`` would
    turn 0.5 into a missing edge and accept text, so anything else is a ValueError.
    """
    if isinstance(matrix, (str, bytes)) or not _is_sequence(matrix):
        raise ValueError(f"adj: must be a square matrix of 0/1 (nested sequences or a 2-D array), got {matrix!r}")
    rows = []
    for i, row in enumerate(matrix):
        if isinstance(row, (str, bytes)) or not _is_sequence(row):
            raise ValueError(f"adj row {i}: must be a sequence of 0/1, got {row!r}")
        rows.append(tuple(_bit(x, i, j) for j, x in enumerate(row)))
    return tuple(rows)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and np.ndim(value) >= 1


def _bit(x: Any, i: int, j: int) -> int:
    if isinstance(x, (numbers.Integral, np.bool_)) or (isinstance(x, numbers.Real) and float(x).is_integer()):
        if x in (0, 1):
            return int(x)
    raise ValueError(f"adj[{i}][{j}]: {x!r} is not allowed; entries must be 0 or 1")


def spec_from_arrays(matrix: Any, ops: Sequence[Any]) -> Spec:
    if isinstance(ops, (str, bytes)) or not _is_sequence(ops):
        raise ValueError(f"ops: must be a sequence of op names (input, ..., output), got {ops!r}")
    return as_rows(matrix), tuple(str(op) for op in ops)


def pad_to_seven(spec: Spec) -> Spec:
    """The same cell written with 7 vertices: unconnected ``PAD_OP`` vertices go before the
    output.  They are pruned away, so the key and the network do not change."""
    matrix, ops = spec
    n, extra = len(matrix), NUM_VERTICES - len(matrix)
    order = list(range(n - 1)) + [None] * extra + [n - 1]
    padded = tuple(
        tuple(0 if a is None or b is None else matrix[a][b] for b in order) for a in order
    )
    return padded, ops[:-1] + (PAD_OP,) * extra + ops[-1:]


@register_space("nb101")
class NB101Space(SearchSpace):
    """The NAS-Bench-101 cell space.  ``build`` gives the benchmark's CIFAR network."""

    ops: tuple[str, ...] = OPS

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> Spec:
        fields = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
        if text.count(";") != 1 or sorted(fields) != ["adj", "ops"] or not text.startswith("adj="):
            raise ValueError(
                f"NB101 arch string {text!r} must be 'adj=<rows>;ops=<ops>', e.g. "
                "'adj=011/001/000;ops=input,conv3x3-bn-relu,output'"
            )
        rows = fields["adj"].split("/")
        for i, row in enumerate(rows):
            if len(row) != len(rows) or set(row) - {"0", "1"}:
                raise ValueError(
                    f"adj row {i} {row!r} must be {len(rows)} digits 0/1 (one row per vertex, "
                    f"{len(rows)} rows given)"
                )
        return tuple(tuple(int(c) for c in row) for row in rows), tuple(fields["ops"].split(","))

    def _format(self, spec: Spec) -> str:
        matrix, ops = spec
        return "adj=" + "/".join("".join(map(str, row)) for row in matrix) + ";ops=" + ",".join(ops)

    def _validate(self, spec: Spec) -> None:
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(f"NB101 spec must be a (matrix, ops) tuple, got {spec!r}")
        matrix, ops = spec
        n = len(ops) if isinstance(ops, tuple) else -1
        if not 2 <= n <= NUM_VERTICES:
            raise ValueError(f"ops: need a tuple of 2..{NUM_VERTICES} ops (input, ..., output), got {ops!r}")
        square = isinstance(matrix, tuple) and len(matrix) == n
        if not (square and all(isinstance(row, tuple) and len(row) == n for row in matrix)):
            raise ValueError(f"adj: must be a {n}x{n} tuple of tuples to match {n} ops, got {matrix!r}")
        for i, row in enumerate(matrix):
            for j, x in enumerate(row):
                if x not in (0, 1) or isinstance(x, float):
                    raise ValueError(f"adj[{i}][{j}]: {x!r} is not allowed; entries must be 0 or 1")
                if x and j <= i:
                    raise ValueError(
                        f"adj[{i}][{j}]: the matrix must be upper triangular (edges go to higher vertices)"
                    )
        if ops[0] != "input" or ops[-1] != "output":
            raise ValueError(f"ops: the first op must be 'input' and the last 'output', got {list(ops)}")
        for v, op in enumerate(ops[1:-1], start=1):
            check_choice(f"ops[{v}]", op, self.ops)
        pruned = prune(matrix, ops)
        if pruned is None:
            raise ValueError(_NO_PATH)
        edges = sum(map(sum, pruned[0]))
        if edges > MAX_EDGES:
            raise ValueError(f"adj: {edges} edges after pruning; at most {MAX_EDGES} are allowed")

    def _key(self, spec: Spec) -> str:
        matrix, ops = self._canonical_spec(spec)
        return dag_hash(np.array(matrix), [_HASH_LABEL[op] for op in ops])

    def _canonical_spec(self, spec: Spec) -> Spec:
        """The pruned cell (isomorphic cells still differ here but share the key)."""
        pruned = prune(*spec)
        if pruned is None:
            raise ValueError(_NO_PATH)
        return pruned

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        rows = [[0] * NUM_VERTICES for _ in range(NUM_VERTICES)]
        for (i, j), key in zip(EDGES, EDGE_KEYS):
            value = config[key]
            if not isinstance(value, numbers.Integral):
                raise ValueError(f"{key}: {value!r} is not allowed; allowed values are [0, 1] (int)")
            rows[i][j] = int(check_choice(key, value, [0, 1]))
        ops = tuple(check_choice(key, config[key], self.ops) for key in OP_KEYS)
        return tuple(map(tuple, rows)), ("input",) + ops + ("output",)

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        """Seven-vertex config; smaller cells are padded (see :func:`pad_to_seven`)."""
        matrix, ops = pad_to_seven(spec)
        edges = {key: matrix[i][j] for (i, j), key in zip(EDGES, EDGE_KEYS)}
        return edges | dict(zip(OP_KEYS, ops[1:-1]))

    # ------------------------------------------------------------------ Tune side
    def tune_space(self) -> dict[str, Any]:
        """21 edge bits and 5 ops; most random configs are invalid and ``decode`` rejects
        them, so searchers should prefer :meth:`sample` / :meth:`mutate` proposals."""
        from ray import tune

        return {k: tune.choice([0, 1]) for k in EDGE_KEYS} | {k: tune.choice(list(self.ops)) for k in OP_KEYS}

    # ------------------------------------------------------------------ tables
    def from_matrix(self, matrix: Any, ops: Sequence[Any]) -> Arch:
        """Arch from an adjacency matrix (nested lists or array) and its ops."""
        return self.make(spec_from_arrays(matrix, ops))

    def arch_from_record(self, record: Mapping[str, Any]) -> Arch:
        """Rows of NB101 tables carry ``adjacency`` and ``ops`` columns (NASLib's layout)."""
        if "adjacency" in record and "ops" in record:
            return self.from_matrix(record["adjacency"], record["ops"])
        return super().arch_from_record(record)

    def record_columns(self) -> list[str]:
        return ["adjacency", "ops", *super().record_columns()]

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        """NB101's ``random_spec``: uniform 7x7 upper-triangular bits and ops, rejected until valid."""
        rng = as_rng(rng)
        while True:
            matrix = np.triu(rng.integers(0, 2, size=(NUM_VERTICES, NUM_VERTICES)), k=1)
            labels = [self.ops[i] for i in rng.integers(len(self.ops), size=NUM_VERTICES - 2)]
            spec = spec_from_arrays(matrix, ["input", *labels, "output"])
            if self.is_valid(spec):
                return self.make(spec)

    def mutate(self, arch: Arch, rng: RngLike = None, mutation_rate: float = 1.0) -> Arch:
        """NB101's evolution mutation on the cell written with 7 vertices: flip each edge
        with probability ``rate/7`` and resample each op with probability ``rate/5``,
        repeated until the cell is valid and its key differs from ``arch``'s."""
        if not mutation_rate > 0:
            raise ValueError(f"mutation_rate: {mutation_rate!r} is not allowed; it must be > 0")
        rng = as_rng(rng)
        matrix, ops = pad_to_seven(self._own(arch).spec)
        while True:
            rows = [list(r) for r in matrix]
            for i, j in EDGES:
                if rng.random() < mutation_rate / NUM_VERTICES:
                    rows[i][j] = 1 - rows[i][j]
            new_ops = list(ops)
            for v in range(1, NUM_VERTICES - 1):
                if rng.random() < mutation_rate / (NUM_VERTICES - 2):
                    others = [op for op in self.ops if op != new_ops[v]]
                    new_ops[v] = others[int(rng.integers(len(others)))]
            spec = spec_from_arrays(rows, new_ops)
            if self.is_valid(spec) and (child := self.make(spec)) != arch:
                return child

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Valid cells one edge flip or one op change away from ``arch`` written with 7
        vertices, one per key, ``arch``'s own key excluded."""
        matrix, ops = pad_to_seven(self._own(arch).spec)
        candidates: list[Spec] = []
        for i, j in EDGES:
            rows = [list(r) for r in matrix]
            rows[i][j] = 1 - rows[i][j]
            candidates.append(spec_from_arrays(rows, ops))
        for v, op in itertools.product(range(1, NUM_VERTICES - 1), self.ops):
            if op != ops[v]:
                candidates.append((matrix, ops[:v] + (op,) + ops[v + 1 :]))
        return self._moves(arch, candidates, check=True)

    def enumerate(self) -> Iterator[Arch]:
        """Every one of the 423,624 unique cells, each as a pruned cell, by vertex count
        and then edge set (NB101 publishes no order of its own; its files are keyed by hash).

        Slow (minutes): for each vertex count it lists the already-pruned graphs with at
        most 9 edges, keeps one graph per unlabeled hash (isomorphism class), and labels it
        in every way, yielding each new key once.
        """
        seen: set[str] = set()
        for n in range(2, NUM_VERTICES + 1):
            shapes: set[str] = set()
            pairs = list(itertools.combinations(range(n), 2))
            for k in range(1, min(MAX_EDGES, len(pairs)) + 1):
                for edges in itertools.combinations(pairs, k):
                    matrix = np.zeros((n, n), dtype=np.int64)
                    matrix[tuple(zip(*edges))] = 1
                    if not (matrix[:, 1:].any(axis=0).all() and matrix[:-1].any(axis=1).all()):
                        continue  # some vertex is off every input->output path
                    shape = dag_hash(matrix, [-1] + [0] * (n - 2) + [-2])
                    if shape in shapes:
                        continue
                    shapes.add(shape)
                    rows = as_rows(matrix)
                    for labels in itertools.product(self.ops, repeat=n - 2):
                        arch = self.make((rows, ("input", *labels, "output")))
                        if arch.key not in seen:
                            seen.add(arch.key)
                            yield arch

    # ------------------------------------------------------------------ networks
    def build(
        self,
        arch: Arch,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        stem_channels: int = 128,
        num_stacks: int = 3,
        num_modules_per_stack: int = 3,
        **build: Any,
    ) -> nn.Module:
        """The NB101 network of the pruned cell (defaults: the benchmark's CIFAR-10 net)."""
        self._check_build("NB101", build, ("stem_channels", "num_stacks", "num_modules_per_stack"), num_classes, in_shape)
        sizes = {"stem_channels": stem_channels, "num_stacks": num_stacks, "num_modules_per_stack": num_modules_per_stack}
        for name, value in sizes.items():
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: {value!r} is not allowed; it must be a positive int")
        matrix, ops = self._canonical_spec(self._own(arch).spec)
        from search_spaces.nb101_net import NB101Network

        return NB101Network(
            matrix, ops, num_classes=num_classes, in_channels=in_shape[0], stem_channels=stem_channels,
            num_stacks=num_stacks, num_modules_per_stack=num_modules_per_stack,
        )

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """The pruned cell: one node per vertex with its ``op``, edges as in the matrix."""
        matrix, ops = self._canonical_spec(self._own(arch).spec)
        graph = nx.DiGraph()
        graph.add_nodes_from((v, {"op": op}) for v, op in enumerate(ops))
        graph.add_edges_from((i, j) for i, row in enumerate(matrix) for j, x in enumerate(row) if x)
        return graph
