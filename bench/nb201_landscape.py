"""The NB201 landscape under the space's own moves: local optima, their basins, and the odds
that a search which climbs from its best random start ends at the global optimum.  The cells are
the searchers' pool: one representative per isomorphism class, valued by its own table row.

A cell is a local optimum when none of its neighbours (one edge's op changed) has a higher
valid accuracy; its basin is the set of cells whose steepest ascent ends there.  A searcher
that climbs from the best of its first N random cells (REA, local search, ``embedding-gp``
with ``local=1``) ends in that cell's basin, so the chance that the best of N random cells
lies in the global optimum's basin bounds how often such a search finds the optimum without
a restart.  With ``--prior`` (a table from ``bench/transfer_prior.py``) it also says where the
prior's favourites lie: in which basin, how many moves from the optimum, and how good they are.

    python bench/nb201_landscape.py --table cifar10=../shared/benchmarks/nb201_all.parquet \
        --table imagenet16=../shared/benchmarks/nb201_imagenet16.parquet --prior prior.parquet
"""
from __future__ import annotations

import argparse
from typing import Iterator

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import shortest_path

from predictors.prior_mean import PriorScores
from predictors.smoothing import move_graph
from raynas.benchmarks import TabularBenchmark
from search_spaces import get_space


def add_table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", action="append", metavar="DATASET=PATH", help="an NB201 table and its dataset column")


def read_tables(parser: argparse.ArgumentParser, items: list[str] | None) -> Iterator[tuple[str, TabularBenchmark]]:
    """``(dataset, table)`` for each ``--table DATASET=PATH``, every item checked before the first loads."""
    items = items or ["cifar10=../shared/benchmarks/nb201_all.parquet"]
    for item in items:
        if not item.partition("=")[2]:
            parser.error(f"--table takes DATASET=PATH, got {item!r}")
    for item in items:
        dataset, _, path = item.partition("=")
        yield dataset, TabularBenchmark.from_parquet(path, "nb201", dataset)


def neighbours(moves: sparse.csr_matrix, cell: int) -> np.ndarray:
    """The cells one move from ``cell`` in a :func:`~predictors.smoothing.move_graph`."""
    return moves.indices[moves.indptr[cell] : moves.indptr[cell + 1]]


def steepest_ascent(valid: np.ndarray, moves: sparse.csr_matrix) -> np.ndarray:
    """For every cell, the local optimum its steepest ascent ends at (pointer doubling);
    ``moves`` is the pool's :func:`~predictors.smoothing.move_graph`."""
    up = np.arange(len(valid))
    for cell in range(len(valid)):
        near = neighbours(moves, cell)
        best = near[np.argmax(valid[near])]
        if valid[best] > valid[cell]:
            up[cell] = best
    while not np.array_equal(up[up], up):
        up = up[up]
    return up


def best_start_climbs(valid: np.ndarray, ends: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Where the steepest ascent from the best of ``n`` distinct random cells ends, ``draws`` times."""
    starts = np.stack([rng.choice(len(valid), n, replace=False) for _ in range(draws)])
    return ends[starts[np.arange(draws), np.argmax(valid[starts], axis=1)]]


def describe_prior(prior: np.ndarray, valid: np.ndarray, ends: np.ndarray, moves: sparse.csr_matrix, counts: list[int]) -> None:
    """Where the ``k`` top-scored cells of a prior lie relative to the optimum and its basin."""
    best = int(np.argmax(valid))
    distance = shortest_path(moves, unweighted=True, indices=best)
    rank = np.argsort(np.argsort(-valid))  # 0 = the best valid cell
    order = np.argsort(-np.where(np.isfinite(prior), prior, -np.inf), kind="stable")
    print("\nthe prior's top k cells:\n")
    print("| k | " + " | ".join(map(str, counts)) + " |\n| --- |" + " --- |" * len(counts))
    tops = [order[:k] for k in counts]
    rows = {
        "share in the optimum's basin": [f"{np.mean(ends[c] == best):.2f}" for c in tops],
        "moves to the optimum, mean": [f"{distance[c].mean():.1f}" for c in tops],
        "valid rank, median": [f"{np.median(rank[c]):.0f}" for c in tops],
        "best valid among them": [f"{valid[c].max():.2f}" for c in tops],
        "its climb ends at the optimum": [str(bool(ends[c[np.argmax(valid[c])]] == best)).lower() for c in tops],
    }
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


def describe(
    name: str, table: TabularBenchmark, starts: list[int], draws: int, top: int, prior: PriorScores | None, counts: list[int]
) -> None:
    space = table.space
    archs = list(dict.fromkeys(space.enumerate()))  # the classes as the searchers' pool holds them
    valid = np.array([table.query(a, "valid") for a in archs])
    test = np.array([table.query(a, "test") for a in archs])
    moves = move_graph(archs, space)
    ends = steepest_ascent(valid, moves)
    optima, sizes = np.unique(ends, return_counts=True)
    order = np.argsort(-valid[optima])
    print(f"\n## {name}: {len(archs)} classes, {len(optima)} local optima\n")
    print("| local optimum | valid | test | basin (classes) | share |\n| --- | --- | --- | --- | --- |")
    for i in order[:top]:
        cell = optima[i]
        print(f"| {archs[cell]} | {valid[cell]:.2f} | {test[cell]:.2f} | {sizes[i]} | {sizes[i] / len(archs):.3f} |")
    rng = np.random.default_rng(0)
    climbs = [best_start_climbs(valid, ends, n, draws, rng) for n in starts]
    print(f"\nclimbing from the best of N random cells ({draws} draws; optimum: test {test[np.argmax(valid)]:.2f}):\n")
    print("| N | " + " | ".join(map(str, starts)) + " |\n| --- |" + " --- |" * len(starts))
    print("| ends at the optimum | " + " | ".join(f"{np.mean(c == np.argmax(valid)):.3f}" for c in climbs) + " |")
    print("| test of where it ends, mean | " + " | ".join(f"{test[c].mean():.2f}" for c in climbs) + " |")
    if prior is not None:
        describe_prior(prior(archs), valid, ends, moves, counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_option(parser)
    parser.add_argument("--starts", default="1,5,10,20,50", help="random start counts N")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--top", type=int, default=8, help="local optima listed")
    parser.add_argument("--prior", help="a prior table (arch, score) or saved CG predictor, e.g. from bench/transfer_prior.py")
    parser.add_argument("--prior-top", default="1,5,10,20,50,100", help="top-k counts of the prior reported")
    args = parser.parse_args()
    prior = PriorScores(args.prior, get_space("nb201")) if args.prior else None  # read once, before any table
    counts = [int(k) for k in args.prior_top.split(",")]
    for dataset, table in read_tables(parser, args.table):
        describe(f"NB201 {dataset}", table, [int(n) for n in args.starts.split(",")], args.draws, args.top, prior, counts)


if __name__ == "__main__":
    main()
