"""DARTS networks against the NB301 zero-cost table: parameter counts row by row.

NASLib computed the table's ``params`` (millions) with tensorwatch on its
``NasBench301SearchSpace`` graph; ``NB301_TABLE_SETTINGS`` are the ``build`` options that
reproduce that network.  The DARTS evaluation defaults are shown beside it for scale.

    python bench/check_darts_params.py --benchmark ../shared/benchmarks/nb301_zc_naslib_subset.parquet
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.parquet as pq

from search_spaces import get_space
from search_spaces.darts import NB301_TABLE_SETTINGS, RECORD_COLUMNS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb301_zc_naslib_subset.parquet")
    args = parser.parse_args()
    rows = pq.read_table(args.benchmark, columns=[*RECORD_COLUMNS, "params"]).to_pylist()
    space = get_space("nb301")

    start = time.perf_counter()
    archs = [space.arch_from_record(r) for r in rows]
    expected = np.array([round(r["params"] * 1e6) for r in rows])
    got = np.array([sum(p.numel() for p in space.build(a, **NB301_TABLE_SETTINGS).parameters()) for a in archs])
    seconds = time.perf_counter() - start
    dev = np.abs(got - expected)
    rel = dev / expected
    darts_eval = sum(p.numel() for p in space.build(archs[0]).parameters())

    settings = ", ".join(f"{k}={v}" for k, v in NB301_TABLE_SETTINGS.items())
    print("| check | result |\n| --- | --- |")
    print(f"| table | {args.benchmark} ({len(rows)} rows, params {expected.min() / 1e6:.3f}-{expected.max() / 1e6:.3f} M) |")
    print(f"| build settings | {settings} |")
    print(f"| rows matching exactly | {int((dev == 0).sum())} / {len(rows)} |")
    print(f"| worst abs deviation | {dev.max()} params (row {int(dev.argmax())}) |")
    print(f"| worst rel deviation | {rel.max():.2e} |")
    print(f"| mean abs deviation | {dev.mean():.1f} params |")
    print(f"| networks built and counted | {len(rows)} in {seconds:.0f} s |")
    print(f"| row 0 with DARTS eval defaults (C=36, 20 cells) | {darts_eval / 1e6:.3f} M vs table {expected[0] / 1e6:.3f} M |")


if __name__ == "__main__":
    main()
