"""The cell space of the official CSNAS code (Nguyen et al., ``namnguyen0510/CSNAS``), ``darts-csnas``.

CSNAS searches DARTS-style cells with TPE, but not the ``darts`` space: its cells have **5**
intermediate nodes (node k has ``k + 2`` incoming edges, 20 edges per cell) and every edge
is one categorical choice among 8 ops, ``none`` included: 40 choices for the normal and the
reduction cell together.  The search code turns each choice into a one-hot DARTS ``alpha``
row and derives the genotype with DARTS' parser, so, per node:

* edges whose op is not ``none`` rank above edges whose op is ``none``; among equals the
  earlier input wins (the one-hot weights tie, DARTS' sort is stable);
* the node keeps its two top-ranked edges with their ops.  A kept ``none`` edge (a node
  with fewer than two real ops) gets the best non-``none`` op of its alpha row, which in the
  official code is decided by unseeded 1e-3 noise; here it is the first non-``none`` op of
  :data:`CSNAS_OPS` (``max_pool_3x3``), so a config always decodes to the same cell.

The cell output concatenates the **last four** nodes (``multiplier=4``: concat ``[3, 4, 5,
6]``); the first node only feeds later nodes.  Arch strings are the Genotype repr with those
concats (``range(3, 7)`` is accepted too).  Networks are
:class:`~search_spaces.darts_net.NetworkCIFAR` with 10-pair cells.

How it differs from ``darts-edges`` (which keeps DARTS' 4 nodes, 14 edges, 7 ops without
``none`` and a searched strength per edge, and tags its archs ``darts``): the node count,
the concat, the ``none`` op standing in for edge strength, and its own Arch tag.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

import networkx as nx

from raynas.arch import Arch
from search_spaces.base import RngLike, SearchSpace, as_rng, check_choice
from search_spaces.darts import (
    CELLS, CellSpec, Spec, allowed_inputs, check_cells, format_genotype, genotype_graph, parse_genotype,
)
from search_spaces.registry import register_space
from search_spaces.vocabulary import DARTS_OPS

if TYPE_CHECKING:
    from torch import nn

#: the official PRIMITIVES, in their order (``none`` first)
CSNAS_OPS: tuple[str, ...] = ("none", *DARTS_OPS)
NUM_NODES = 5
NUM_ENTRIES = 2 * NUM_NODES
#: ``(node, input)`` of every edge of a cell, in the official order (20 for 5 nodes)
EDGES: tuple[tuple[int, int], ...] = tuple((node, i) for node in range(NUM_NODES) for i in range(node + 2))
#: cell states concatenated into the cell output (the last four nodes)
CONCAT: tuple[int, ...] = tuple(range(NUM_NODES - 2, NUM_NODES + 2))
_CONCAT = re.compile(r"\[\s*3\s*,\s*4\s*,\s*5\s*,\s*6\s*\]|range\(\s*3\s*,\s*7\s*\)")
_TEMPLATE = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ...10 pairs], normal_concat=[3, 4, 5, 6], "
    "reduce=[...10 pairs], reduce_concat=[3, 4, 5, 6])"
)


def edge_key(cell: str, edge: int) -> str:
    return f"{cell}_edge_{edge:02d}"


def derive_cell(ops: list[str]) -> CellSpec:
    """Genotype cell from one op per edge (``none`` allowed), as the official parser derives
    it (see the module docstring); each node's two pairs in ascending input order."""
    fallback = next(op for op in CSNAS_OPS if op != "none")
    cell: list[tuple[str, int]] = []
    for node in range(NUM_NODES):
        incoming = [e for e, (n, _) in enumerate(EDGES) if n == node]
        kept = sorted(incoming, key=lambda e: ops[e] == "none")[:2]
        pairs = ((fallback if ops[e] == "none" else ops[e], EDGES[e][1]) for e in kept)
        cell.extend(sorted(pairs, key=lambda pair: pair[1]))
    return tuple(cell)


def _node_sorted(cell: CellSpec) -> CellSpec:
    """A node's two pairs are summed, so their order does not matter: sort them."""
    return tuple(p for k in range(NUM_NODES) for p in sorted(cell[2 * k : 2 * k + 2], key=lambda q: (q[1], q[0])))


@register_space("darts-csnas")
class DartsCsnasSpace(SearchSpace):
    """CSNAS's 5-node DARTS cells, one categorical op (``none`` included) per edge."""

    ops: tuple[str, ...] = DARTS_OPS  # ops a genotype may hold (``none`` only appears in configs)

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> Spec:
        return parse_genotype(text, "darts-csnas", NUM_ENTRIES, _CONCAT, "[3, 4, 5, 6] (the last four of 5 nodes)", _TEMPLATE)

    def _format(self, spec: Spec) -> str:
        return format_genotype(spec, CONCAT)

    def _validate(self, spec: Spec) -> None:
        check_cells("darts-csnas", spec, self.ops, NUM_NODES)

    def _key(self, spec: Spec) -> str:
        return self._format(self._canonical_spec(spec))

    def _canonical_spec(self, spec: Spec) -> Spec:
        return _node_sorted(spec[0]), _node_sorted(spec[1])

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        cells = []
        for cell in CELLS:
            ops = [str(check_choice(edge_key(cell, e), config[edge_key(cell, e)], CSNAS_OPS)) for e in range(len(EDGES))]
            cells.append(derive_cell(ops))
        return cells[0], cells[1]

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        """Kept edges carry their op, the others ``none``, so :func:`derive_cell` keeps exactly
        the genotype's edges."""
        config: dict[str, Any] = {}
        for name, cell in zip(CELLS, spec):
            kept = {(j // 2, i): op for j, (op, i) in enumerate(cell)}
            config |= {edge_key(name, e): kept.get(edge, "none") for e, edge in enumerate(EDGES)}
        return config

    def tune_space(self) -> dict[str, Any]:
        """One categorical op per edge and cell: 40 keys of 8 values, as the official hyperopt space."""
        from ray import tune

        return {edge_key(cell, e): tune.choice(list(CSNAS_OPS)) for cell in CELLS for e in range(len(EDGES))}

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        """A uniform draw of the 40 edge ops, decoded: the distribution TPE starts from."""
        rng = as_rng(rng)
        cells = [derive_cell([CSNAS_OPS[int(rng.integers(len(CSNAS_OPS)))] for _ in EDGES]) for _ in CELLS]
        return self.make((cells[0], cells[1]))

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Every arch one op change or one input change away (a node's inputs kept distinct)."""
        spec = self._own(arch).spec
        out = []
        for c, cell in enumerate(spec):
            for j, (op, i) in enumerate(cell):
                partner = cell[j ^ 1][1]
                options = [(o, i) for o in self.ops if o != op]
                options += [(op, n) for n in allowed_inputs(j) if n not in (i, partner)]
                for pair in options:
                    edited = cell[:j] + (pair,) + cell[j + 1 :]
                    out.append((edited, spec[1]) if c == 0 else (spec[0], edited))
        return self._moves(arch, out)

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
        **build: Any,
    ) -> nn.Module:
        """The DARTS evaluation network with 5-node cells (the official search built C=32, 8 cells)."""
        allowed = ("C", "layers", "auxiliary", "drop_path_prob", "stem_multiplier")
        self._check_build("darts-csnas", build, allowed, num_classes, in_shape)
        normal, reduce = self._own(arch).spec
        from search_spaces.darts_net import NetworkCIFAR

        return NetworkCIFAR(
            normal, reduce, num_classes=num_classes, in_shape=in_shape, C=C, layers=layers,
            auxiliary=auxiliary, drop_path_prob=drop_path_prob, stem_multiplier=stem_multiplier,
        )  # fmt: skip

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """Both cells in one DAG (node attribute ``cell``), as ``darts``'s, with 5 ``sum``
        vertices per cell and the ``output`` vertex fed by the last four."""
        return genotype_graph(self._own(arch).spec, NUM_NODES, CONCAT)
