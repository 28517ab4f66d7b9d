"""NB101 against NASLib's 500-cell table: parameter counts of the built networks, pruning.

    python bench/check_nb101_params.py --benchmark ../shared/benchmarks/nb101_zc_naslib_subset.parquet
    python bench/check_nb101_params.py --enumerate   # also count every cell (minutes)

The table's ``params`` (millions) were computed by NASLib on its PyTorch NB101 model: every
``nn.Parameter`` (conv weights without bias, BN scale and shift, dense weight and bias; no
BN running statistics), which is also what the official TF ``trainable_parameters`` count.
"""
from __future__ import annotations

import argparse
import time

import pyarrow.parquet as pq
import torch

from search_spaces import get_space
from search_spaces.nb101 import NUM_CELLS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb101_zc_naslib_subset.parquet")
    parser.add_argument("--enumerate", action="store_true", help="count all unique cells (slow)")
    args = parser.parse_args()
    rows = pq.read_table(args.benchmark, columns=["adjacency", "ops", "params"]).to_pylist()
    space = get_space("nb101")

    start = time.perf_counter()
    archs = [space.arch_from_record(r) for r in rows]
    worst_abs, worst_abs_i, worst_rel, worst_rel_i, exact = 0.0, -1, 0.0, -1, 0
    for i, (arch, row) in enumerate(zip(archs, rows)):
        with torch.device("meta"):  # same modules, no weight allocation or init (up to 30M params a net)
            model = space.build(arch, num_classes=10)
        got = sum(p.numel() for p in model.parameters())
        expected = row["params"] * 1e6
        dev = abs(got - expected)
        exact += dev < 0.5
        if dev > worst_abs:
            worst_abs, worst_abs_i = dev, i
        if dev / expected > worst_rel:
            worst_rel, worst_rel_i = dev / expected, i
    build_s = time.perf_counter() - start
    pruned_sizes = [len(space.canonical(a).spec[1]) for a in archs]

    print("| check | result |\n| --- | --- |")
    print(f"| params == round(table params x 1e6) | {exact} of {len(rows)} rows |")
    print(f"| worst absolute deviation | {worst_abs:.3g} params (row {worst_abs_i}) |")
    print(f"| worst relative deviation | {worst_rel:.3g} (row {worst_rel_i}) |")
    print(f"| networks built (default 128-channel stem, 3x3 cells, meta device) | {len(rows)} in {build_s:.0f} s |")
    print(f"| distinct keys (official hashes) among rows | {len(set(archs))} |")
    print(f"| rows pruning to the trivial input->output cell | {pruned_sizes.count(2)} |")
    print(f"| pruned vertex counts | {min(pruned_sizes)}..{max(pruned_sizes)} |")
    if args.enumerate:
        start = time.perf_counter()
        count = sum(1 for _ in space.enumerate())
        print(f"| enumerate() cells (NB101 has {NUM_CELLS:,}) | {count:,} in {time.perf_counter() - start:.0f} s |")


if __name__ == "__main__":
    main()
