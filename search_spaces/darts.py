"""DARTS / NAS-Bench-301 cell space: a normal and a reduction cell, each with 4 nodes.

Node k (k=0..3) of a cell sums two ``(op, input)`` pairs; inputs 0 and 1 are the outputs
of the previous two cells, input i >= 2 is node i-2, and a node's two inputs differ (the
NB301 rule; its op set has no ``none``).  The cell output concatenates all four nodes.

The flat Tune config follows NB301's own ConfigSpace: per cell, ``{cell}_inputs_{k}``
picks node k's unordered input pair (``"0_2"``) and ``{cell}_op_{2k}`` / ``{cell}_op_{2k+1}``
are the ops on its smaller / larger input, so every combination of values is a valid cell.

Arch strings are the DARTS ``Genotype`` repr, so genotypes printed by DARTS code paste
straight in.  ``get_space("nb301")`` is the same space under its benchmark's name: it
builds the same class, so Arch values stay tagged ``"darts"`` and compare equal whichever
name parsed them.
"""
from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import networkx as nx

from raynas.arch import Arch
from search_spaces.base import RngLike, SearchSpace, as_rng, check_choice
from search_spaces.registry import register_space
from search_spaces.vocabulary import DARTS_OPS as OPS

if TYPE_CHECKING:
    from torch import nn

CellSpec = tuple[tuple[str, int], ...]
Spec = tuple[CellSpec, CellSpec]

CELLS: tuple[str, str] = ("normal", "reduce")
NUM_NODES = 4
NUM_ENTRIES = 2 * NUM_NODES
#: cell states concatenated into the cell output (all four nodes)
CONCAT: tuple[int, ...] = tuple(range(2, NUM_NODES + 2))
CONFIG_KEYS: tuple[str, ...] = tuple(
    key
    for cell in CELLS
    for key in (
        *(f"{cell}_op_{j}" for j in range(NUM_ENTRIES)),
        *(f"{cell}_inputs_{k}" for k in range(NUM_NODES)),
    )
)
RECORD_COLUMNS: tuple[str, ...] = tuple(f"{cell}_{kind}" for cell in CELLS for kind in ("ops", "inputs"))

#: ``build`` options that reproduce the ``params`` column of NASLib's NB301 zero-cost table
#: (``nb301_zc_naslib_subset.parquet``): NASLib's ``NasBench301SearchSpace`` of May 2022,
#: channels [32, 64, 128], 8 cells, stem x3, search-model cell ops, no auxiliary head.
NB301_TABLE_SETTINGS: dict[str, Any] = {
    "C": 32,
    "layers": 8,
    "stem_multiplier": 3,
    "auxiliary": False,
    "affine_ops": False,
    "pool_bn": True,
}

_PAIR = r"\(\s*['\"](\w+)['\"]\s*,\s*(\d+)\s*\)"
_PAIR_LIST = re.compile(rf"\s*(?:{_PAIR}\s*(?:,\s*{_PAIR}\s*)*,?\s*)?")
_GENOTYPE = re.compile(
    r"\s*Genotype\(\s*normal\s*=\s*\[(?P<normal>[^\[\]]*)\]\s*,\s*normal_concat\s*=\s*(?P<normal_concat>[^=]*?)"
    r"\s*,\s*reduce\s*=\s*\[(?P<reduce>[^\[\]]*)\]\s*,\s*reduce_concat\s*=\s*(?P<reduce_concat>[^=]*?)\s*\)\s*"
)
_CONCAT = re.compile(r"\[\s*2\s*,\s*3\s*,\s*4\s*,\s*5\s*\]|range\(\s*2\s*,\s*6\s*\)")
_TEMPLATE = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ...8 pairs], normal_concat=[2, 3, 4, 5], "
    "reduce=[...8 pairs], reduce_concat=[2, 3, 4, 5])"
)


def allowed_inputs(entry: int) -> list[int]:
    """Inputs of genotype entry ``entry`` (it feeds node entry // 2): the cell inputs and earlier nodes."""
    return list(range(entry // 2 + 2))


def check_cells(space: str, spec: Spec, ops: Sequence[str], num_nodes: int) -> None:
    """Check a (normal, reduce) genotype of ``num_nodes``-node cells: each node two (op, input)
    entries with different inputs among the cell inputs and earlier nodes."""
    if not isinstance(spec, tuple) or len(spec) != len(CELLS):
        raise ValueError(f"{space} spec must be a (normal, reduce) tuple of cells, got {spec!r}")
    entries = 2 * num_nodes
    for name, cell in zip(CELLS, spec):
        if not isinstance(cell, tuple) or len(cell) != entries:
            raise ValueError(f"{name} cell must be a tuple of {entries} (op, input) pairs, got {cell!r}")
        for j, pair in enumerate(cell):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValueError(f"{name} entry {j} must be an (op, input) pair, got {pair!r}")
            check_choice(f"{name} entry {j} op", pair[0], ops)
            if type(pair[1]) is not int:
                raise ValueError(
                    f"{name} entry {j} input: {pair[1]!r} is not allowed; allowed values are {allowed_inputs(j)} (int)"
                )
            check_choice(f"{name} entry {j} input", pair[1], allowed_inputs(j))
        for k in range(num_nodes):
            first, second = cell[2 * k][1], cell[2 * k + 1][1]
            if first == second:
                raise ValueError(
                    f"{name} node {k} (entries {2 * k} and {2 * k + 1}): both inputs are {first}; "
                    f"a node's two inputs must differ, choose two of {allowed_inputs(2 * k)}"
                )


def genotype_graph(spec: Spec, num_nodes: int, concat: Sequence[int]) -> nx.DiGraph:
    """Both cells of a genotype in one DAG (node attribute ``cell``), vertices in topological
    order: per cell two ``input`` vertices, one per op, a ``sum`` per node and an ``output``
    fed by the states ``concat`` (indices among inputs then node sums)."""
    graph = nx.DiGraph()
    for name, cell in zip(CELLS, spec):
        base = graph.number_of_nodes()
        state = [base, base + 1]  # vertex of each cell state: inputs, then node sums
        graph.add_nodes_from(((v, {"op": "input", "cell": name}) for v in state))
        for k in range(num_nodes):
            op_vertices = []
            for op, i in cell[2 * k : 2 * k + 2]:
                v = graph.number_of_nodes()
                graph.add_node(v, op=op, cell=name)
                graph.add_edge(state[i], v)
                op_vertices.append(v)
            total = graph.number_of_nodes()
            graph.add_node(total, op="sum", cell=name)
            graph.add_edges_from((v, total) for v in op_vertices)
            state.append(total)
        out = graph.number_of_nodes()
        graph.add_node(out, op="output", cell=name)
        graph.add_edges_from((state[s], out) for s in concat)
    return graph


def parse_genotype(
    text: str, label: str, num_entries: int, concat: re.Pattern[str], concat_rule: str, template: str
) -> Spec:
    """The two cells of a DARTS ``Genotype(...)`` string of ``num_entries`` (op, input) pairs
    each, whose concat lists match ``concat``; errors name ``label`` and ``concat_rule``."""
    match = _GENOTYPE.fullmatch(text)
    if not match:
        raise ValueError(f"{label} arch string {text!r} is not a Genotype; expected {template}")
    cells = []
    for cell in CELLS:
        concat_text = match.group(f"{cell}_concat")
        if not concat.fullmatch(concat_text):
            raise ValueError(f"{cell}_concat must be {concat_rule}, got {concat_text!r}")
        body = match.group(cell)
        if not _PAIR_LIST.fullmatch(body):
            raise ValueError(f"{cell} cell [{body}] must be a list of ('op', input) pairs; expected {template}")
        pairs = tuple((op, int(i)) for op, i in re.findall(_PAIR, body))
        if len(pairs) != num_entries:
            raise ValueError(f"{cell} cell needs {num_entries} (op, input) pairs (2 per node), got {len(pairs)}")
        cells.append(pairs)
    return cells[0], cells[1]


def format_genotype(spec: Spec, concat: Sequence[int]) -> str:
    """``spec`` as the DARTS repository writes a ``Genotype`` (both cells concatenating ``concat``)."""
    normal, reduce = (", ".join(f"('{op}', {i})" for op, i in cell) for cell in spec)
    states = ", ".join(map(str, concat))
    return f"Genotype(normal=[{normal}], normal_concat=[{states}], reduce=[{reduce}], reduce_concat=[{states}])"


def allowed_pairs(node: int) -> list[str]:
    """Values of ``{cell}_inputs_{node}``: node ``node``'s unordered input pairs as ``"i_j"``, i < j."""
    return [f"{i}_{j}" for i, j in itertools.combinations(range(node + 2), 2)]


def _node_pairs(cell: CellSpec, node: int) -> list[tuple[str, int]]:
    """Node ``node``'s two (op, input) pairs, smaller input first (the config's order)."""
    return sorted(cell[2 * node : 2 * node + 2], key=lambda pair: pair[1])


def _relabel(cell: CellSpec, order: tuple[int, ...]) -> CellSpec | None:
    """``cell`` with node ``order[p]`` moved to position p and each node's pairs sorted;
    None when the new order puts a node before one of its inputs."""
    position = {old: new for new, old in enumerate(order)}
    out: list[tuple[str, int]] = []
    for new, old in enumerate(order):
        pairs = []
        for op, i in cell[2 * old : 2 * old + 2]:
            moved = i if i < 2 else position[i - 2] + 2
            if moved >= new + 2:
                return None
            pairs.append((op, moved))
        out.extend(sorted(pairs))
    return tuple(out)


def canonical_cell(cell: CellSpec) -> CellSpec:
    """Smallest equivalent form of a cell.

    A node's two pairs are summed, so their order is irrelevant; the output concatenates
    all nodes, so renumbering nodes (keeping each after its inputs) only permutes channels,
    which the next 1x1 conv absorbs.  Of all such renumberings (at most 4! = 24) the
    lexicographically smallest, with sorted pairs, represents the class.
    """
    forms = (_relabel(cell, order) for order in itertools.permutations(range(NUM_NODES)))
    return min(form for form in forms if form is not None)


@register_space("darts", aliases=("nb301",))
class DartsSpace(SearchSpace):
    """The DARTS cell space (NB301's).  ``build`` gives the DARTS evaluation network."""

    ops: tuple[str, ...] = OPS

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> Spec:
        return parse_genotype(text, "DARTS", NUM_ENTRIES, _CONCAT, "[2, 3, 4, 5] (all four nodes, as in NB301)", _TEMPLATE)

    def _format(self, spec: Spec) -> str:
        return format_genotype(spec, CONCAT)

    def _validate(self, spec: Spec) -> None:
        check_cells("DARTS", spec, self.ops, NUM_NODES)

    def _key(self, spec: Spec) -> str:
        return self._format(self._canonical_spec(spec))

    def _canonical_spec(self, spec: Spec) -> Spec:
        return canonical_cell(spec[0]), canonical_cell(spec[1])

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        cells = []
        for cell in CELLS:
            ops = [check_choice(f"{cell}_op_{j}", config[f"{cell}_op_{j}"], self.ops) for j in range(NUM_ENTRIES)]
            ins: list[int] = []
            for k in range(NUM_NODES):
                key = f"{cell}_inputs_{k}"
                pair = check_choice(key, config[key], allowed_pairs(k))
                ins.extend(int(i) for i in str(pair).split("_"))
            cells.append(tuple(zip(map(str, ops), ins)))
        return cells[0], cells[1]

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for name, cell in zip(CELLS, spec):
            pairs = [_node_pairs(cell, k) for k in range(NUM_NODES)]
            config |= {f"{name}_op_{j}": op for j, (op, _) in enumerate(p for node in pairs for p in node)}
            config |= {f"{name}_inputs_{k}": f"{a[1]}_{b[1]}" for k, (a, b) in enumerate(pairs)}
        return config

    # ------------------------------------------------------------------ Tune side
    def tune_space(self) -> dict[str, Any]:
        """Per cell, eight op keys and one input-pair key per node, as in NB301's ConfigSpace.

        ``{cell}_inputs_{k}`` chooses node k's unordered pair of distinct inputs as a string
        ``"i_j"`` with i < j (node 0: ``["0_1"]``, node 1: ``["0_1", "0_2", "1_2"]``, ...);
        ``{cell}_op_{2k}`` is the op on input i and ``{cell}_op_{2k+1}`` the op on input j.
        Every combination of domain values is a valid architecture, so searchers that draw
        each key independently (random search, TPE, Nevergrad, Optuna) never propose an
        invalid one, and configs and pair-sorted genotypes correspond one to one.
        """
        from ray import tune

        domains: dict[str, Any] = {}
        for cell in CELLS:
            domains |= {f"{cell}_op_{j}": tune.choice(list(self.ops)) for j in range(NUM_ENTRIES)}
            domains |= {f"{cell}_inputs_{k}": tune.choice(allowed_pairs(k)) for k in range(NUM_NODES)}
        return domains

    # ------------------------------------------------------------------ tables
    def arch_from_record(self, record: Mapping[str, Any]) -> Arch:
        """Rows of NB301 tables carry per-cell op and input lists (``normal_ops``, ...)."""
        if all(c in record for c in RECORD_COLUMNS):
            return self.make(
                tuple(  # type: ignore[arg-type]
                    tuple(zip(map(str, record[f"{c}_ops"]), map(int, record[f"{c}_inputs"]))) for c in CELLS
                )
            )
        return super().arch_from_record(record)

    def record_columns(self) -> list[str]:
        return [*RECORD_COLUMNS, *super().record_columns()]

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        """Uniform ops and, per node, two distinct inputs (NB301's / NASLib's sampler); each
        node's pairs come in ascending input order, so ``decode(encode(a))`` repeats ``a`` exactly."""
        rng = as_rng(rng)
        cells = []
        for _ in CELLS:
            cell: list[tuple[str, int]] = []
            for k in range(NUM_NODES):
                inputs = rng.choice(k + 2, size=2, replace=False)
                pairs = [(self.ops[int(rng.integers(len(self.ops)))], int(i)) for i in inputs]
                cell.extend(sorted(pairs, key=lambda pair: pair[1]))
            cells.append(tuple(cell))
        return self.make((cells[0], cells[1]))

    def _edits(self, spec: Spec) -> list[Spec]:
        """Every spec one op change or one input change away (inputs of a node kept distinct)."""
        out = []
        for c, cell in enumerate(spec):
            for j, (op, i) in enumerate(cell):
                partner = cell[j ^ 1][1]
                options = [(o, i) for o in self.ops if o != op]
                options += [(op, n) for n in allowed_inputs(j) if n not in (i, partner)]
                for pair in options:
                    edited = cell[:j] + (pair,) + cell[j + 1 :]
                    out.append((edited, spec[1]) if c == 0 else (spec[0], edited))
        return out

    def neighbors(self, arch: Arch) -> list[Arch]:
        return self._moves(arch, self._edits(self._own(arch).spec))

    def mutate(self, arch: Arch, rng: RngLike = None) -> Arch:
        """NB301's REA move: pick a cell, an entry and op-or-input, change it; redrawn when
        the edit only renumbers equivalent nodes (an op change never does)."""
        rng = as_rng(rng)
        spec = self._own(arch).spec
        while True:
            c, j = int(rng.integers(len(CELLS))), int(rng.integers(NUM_ENTRIES))
            cell = spec[c]
            op, i = cell[j]
            inputs = [n for n in allowed_inputs(j) if n not in (i, cell[j ^ 1][1])]
            if inputs and rng.random() < 0.5:
                pair = (op, int(rng.choice(inputs)))
            else:
                pair = (str(rng.choice([o for o in self.ops if o != op])), i)
            edited = cell[:j] + (pair,) + cell[j + 1 :]
            child = self.make((edited, spec[1]) if c == 0 else (spec[0], edited))
            if child != arch:
                return child

    # ------------------------------------------------------------------ networks
    def build(
        self,
        arch: Arch,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        C: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
        affine_ops: bool = True,
        pool_bn: bool = False,
        **build: Any,
    ) -> nn.Module:
        """The DARTS evaluation network (defaults: DARTS' CIFAR-10 C=36, 20 cells).

        ``affine_ops=False, pool_bn=True`` give NASLib's search-model cell ops; with
        ``**NB301_TABLE_SETTINGS`` the parameter count equals the NB301 zero-cost table's.
        """
        allowed = ("C", "layers", "auxiliary", "drop_path_prob", "stem_multiplier", "affine_ops", "pool_bn")
        self._check_build("DARTS", build, allowed, num_classes, in_shape)
        normal, reduce = self._own(arch).spec
        from search_spaces.darts_net import NetworkCIFAR

        return NetworkCIFAR(
            normal,
            reduce,
            num_classes=num_classes,
            in_shape=in_shape,
            C=C,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
            stem_multiplier=stem_multiplier,
            affine_ops=affine_ops,
            pool_bn=pool_bn,
        )

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """Both cells in one DAG (two disjoint parts, node attribute ``cell``): per cell two
        ``input`` vertices, one vertex per op, a ``sum`` vertex per node and an ``output``
        (concat) vertex fed by all four sums.  Vertices are numbered in topological order."""
        return genotype_graph(self._own(arch).spec, NUM_NODES, CONCAT)
