"""The NB201 landscape under the space's own moves: local optima, their basins, and the odds
that a search which climbs from its best random start ends at the global optimum.  The cells are
the searchers' pool: one representative per isomorphism class, valued by its own table row.

A cell is a local optimum when none of its neighbours (one edge's op changed) has a higher
valid accuracy; its basin is the set of cells whose steepest ascent ends there.  A searcher
that climbs from the best of its first N random cells (REA, local search, ``embedding-gp``
with ``local=1``) ends in that cell's basin, so the chance that the best of N random cells
lies in the global optimum's basin bounds how often such a search finds the optimum without
a restart.

    python bench/nb201_landscape.py --table cifar10=../shared/benchmarks/nb201_all.parquet \
        --table imagenet16=../shared/benchmarks/nb201_imagenet16.parquet
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy import sparse

from predictors.smoothing import move_graph
from raynas.benchmarks import TabularBenchmark


def steepest_ascent(valid: np.ndarray, moves: sparse.csr_matrix) -> np.ndarray:
    """For every cell, the local optimum its steepest ascent ends at (pointer doubling);
    ``moves`` is the pool's :func:`~predictors.smoothing.move_graph`."""
    up = np.arange(len(valid))
    for cell in range(len(valid)):
        near = moves.indices[moves.indptr[cell] : moves.indptr[cell + 1]]
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


def describe(name: str, table: TabularBenchmark, starts: list[int], draws: int, top: int) -> None:
    space = table.space
    archs = list(dict.fromkeys(space.enumerate()))  # the classes as the searchers' pool holds them
    valid = np.array([table.query(a, "valid") for a in archs])
    test = np.array([table.query(a, "test") for a in archs])
    ends = steepest_ascent(valid, move_graph(archs, space))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="append", metavar="DATASET=PATH", help="an NB201 table and its dataset column")
    parser.add_argument("--starts", default="1,5,10,20,50", help="random start counts N")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--top", type=int, default=8, help="local optima listed")
    args = parser.parse_args()
    tables = args.table or ["cifar10=../shared/benchmarks/nb201_all.parquet"]
    for item in tables:
        dataset, _, path = item.partition("=")
        if not path:
            parser.error(f"--table takes DATASET=PATH, got {item!r}")
        table = TabularBenchmark.from_parquet(path, "nb201", dataset)
        describe(f"NB201 {dataset}", table, [int(n) for n in args.starts.split(",")], args.draws, args.top)


if __name__ == "__main__":
    main()
