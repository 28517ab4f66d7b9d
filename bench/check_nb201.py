"""NB201 against the public table: official index order, parameter counts, canonical classes.

    python bench/check_nb201.py --benchmark ../shared/benchmarks/nb201_all.parquet
"""
from __future__ import annotations

import argparse
import time

import pyarrow.parquet as pq

from search_spaces import get_space


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
    worst_abs, worst_rel, worst_i = 0.0, 0.0, -1
    for i, expected in zip(table["index"], table["params_m"]):
        model = space.build(space.from_index(i), num_classes=10)
        got = sum(p.numel() for p in model.parameters()) / 1e6
        if abs(got - expected) > worst_abs:
            worst_abs, worst_rel, worst_i = abs(got - expected), abs(got - expected) / expected, i
    build_s = time.perf_counter() - start

    archs = list(space.enumerate())
    classes = {a.key for a in archs}
    dead_output = sum(1 for a in archs if a.key == "nb201-zero-cell")

    print("| check | result |\n| --- | --- |")
    print(f"| from_index(i) == arch_str, {len(table['index'])} rows | {len(table['index']) - len(mismatched)} match ({index_s:.1f} s) |")
    print(f"| params vs params_m, worst abs deviation | {worst_abs * 1e6:.0f} params (index {worst_i}, rel {worst_rel:.2e}) |")
    print(f"| networks built | {len(table['index'])} in {build_s:.0f} s |")
    print(f"| canonical classes among {len(archs)} cells | {len(classes)} |")
    print(f"| cells whose output is unreachable (one class) | {dead_output} |")


if __name__ == "__main__":
    main()
