"""NB201 against the public table: official index order, parameter counts, canonical classes.

    python bench/check_nb201.py --benchmark ../shared/benchmarks/nb201_all.parquet
"""
from __future__ import annotations

import argparse
import time

import pyarrow.parquet as pq

from search_spaces import get_space
from search_spaces.nb201 import ZERO_CELL_KEY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    args = parser.parse_args()
    table = pq.read_table(args.benchmark, columns=["index", "arch_str", "params_m"]).to_pydict()
    space = get_space("nb201")

    start = time.perf_counter()
    mismatched = [i for i, text in zip(table["index"], table["arch_str"]) if str(space.from_index(i)) != text]
    index_s = time.perf_counter() - start

    start = time.perf_counter()
    ours = [sum(p.numel() for p in space.build(space.from_index(i)).parameters()) for i in table["index"]]
    build_s = time.perf_counter() - start
    expected = [round(v * 1e6) for v in table["params_m"]]
    off = [i for i, (a, b) in enumerate(zip(ours, expected)) if a != b]
    counts_of_other_archs = set(ours)
    explained = sum(1 for i in off if expected[i] in counts_of_other_archs)
    worst = max((abs(ours[i] - expected[i]) for i in off), default=0)

    archs = list(space.enumerate())
    classes = {a.key for a in archs}
    dead_output = sum(1 for a in archs if a.key == ZERO_CELL_KEY)

    print("| check | result |\n| --- | --- |")
    print(f"| from_index(i) == arch_str, {len(table['index'])} rows | {len(table['index']) - len(mismatched)} match ({index_s:.1f} s) |")
    print(f"| params == params_m exactly | {len(ours) - len(off)} of {len(ours)} rows |")
    print(f"| rows that differ (worst abs deviation) | {len(off)} ({worst} params) |")
    print(f"| ... whose table value is another architecture's exact count | {explained} of {len(off)} |")
    print(f"| networks built and counted | {len(ours)} in {build_s:.0f} s |")
    print(f"| canonical classes among {len(archs)} cells | {len(classes)} |")
    print(f"| cells whose output is unreachable (one class) | {dead_output} |")


if __name__ == "__main__":
    main()
