"""The DARTS cell space in the published one-op-per-edge parametrisation (``darts-edges``).

DARTS (Liu et al. 2019) gives every edge of a cell an op: node k (k = 0..3) has an edge
from each of its ``k + 2`` predecessors (the two cell inputs and the earlier nodes), 14
edges per cell.  The genotype keeps, per node, the two strongest incoming edges with their
ops.  Here both choices are categorical Tune domains, so TPE (HyperOpt) and every other
searcher drive them directly; per cell and edge ``e`` (edges numbered node by node, inputs
ascending, as DARTS' ``alphas`` rows):

* ``{cell}_edge_{e}_op``: the edge's op, one of the space's ops;
* ``{cell}_edge_{e}_weight``: its strength, one of :data:`EDGE_WEIGHTS`.

A node keeps its two highest-weight incoming edges; ties go to the earlier input (DARTS'
stable sort).  With 8 levels a uniform draw picks each of node 3's ten input pairs with
probability 0.07-0.14 (uniform: 0.10).  Every config is a valid cell; ops of edges that are
not kept do not matter.

Why a separate registered name rather than an option of ``darts``: a trial's config carries
only ``space``, so the name must say how the keys decode.  The class subclasses
:class:`~search_spaces.darts.DartsSpace` and keeps its Arch tag (``"darts"``), so the
architectures, their networks, keys and search moves are exactly the DARTS space's and an
architecture found here equals the same genotype parsed by ``get_space("darts")``.
"""
from __future__ import annotations

from typing import Any, Mapping

from search_spaces.base import check_choice
from search_spaces.darts import CELLS, NUM_NODES, CellSpec, DartsSpace, Spec
from search_spaces.registry import register_space

#: categorical strength levels of an edge (the stand-in for DARTS' softmax weight)
EDGE_WEIGHTS: tuple[int, ...] = tuple(range(1, 9))


#: ``(node, input)`` of every edge of a cell in DARTS order (14 for 4 nodes)
EDGES: tuple[tuple[int, int], ...] = tuple((node, i) for node in range(NUM_NODES) for i in range(node + 2))


def derive_cell(ops: list[str], weights: list[int]) -> CellSpec:
    """Genotype cell from one op and one weight per edge: each node's top-2 incoming edges,
    highest weight first and the earlier input on ties, listed in ascending input order."""
    cell: list[tuple[str, int]] = []
    for node in range(NUM_NODES):
        incoming = [e for e, (n, _) in enumerate(EDGES) if n == node]
        kept = sorted(incoming, key=lambda e: -weights[e])[:2]
        cell.extend(sorted(((ops[e], EDGES[e][1]) for e in kept), key=lambda pair: pair[1]))
    return tuple(cell)


@register_space("darts-edges", tag="darts")
class DartsEdgeSpace(DartsSpace):
    """DARTS cells searched as one op and one strength per edge (see the module docstring)."""

    def tune_space(self) -> dict[str, Any]:
        """Per cell and edge: a categorical op and a categorical weight (28 keys per cell)."""
        from ray import tune

        domains: dict[str, Any] = {}
        for cell in CELLS:
            for e in range(len(EDGES)):
                domains[f"{cell}_edge_{e}_op"] = tune.choice(list(self.ops))
                domains[f"{cell}_edge_{e}_weight"] = tune.choice(list(EDGE_WEIGHTS))
        return domains

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        cells = []
        for cell in CELLS:
            ops = [str(check_choice(f"{cell}_edge_{e}_op", config[f"{cell}_edge_{e}_op"], self.ops)) for e in range(len(EDGES))]
            weights = [
                int(check_choice(f"{cell}_edge_{e}_weight", config[f"{cell}_edge_{e}_weight"], EDGE_WEIGHTS))
                for e in range(len(EDGES))
            ]
            cells.append(derive_cell(ops, weights))
        return cells[0], cells[1]

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        """Kept edges carry their op and the top weight; the others the space's first op and
        the lowest weight, so :func:`derive_cell` keeps exactly the genotype's edges."""
        config: dict[str, Any] = {}
        for name, cell in zip(CELLS, spec):
            kept = {(j // 2, i): op for j, (op, i) in enumerate(cell)}
            for e, edge in enumerate(EDGES):
                config[f"{name}_edge_{e}_op"] = kept.get(edge, self.ops[0])
                config[f"{name}_edge_{e}_weight"] = EDGE_WEIGHTS[-1] if edge in kept else EDGE_WEIGHTS[0]
        return config
