"""Do our zero-cost proxies rank NB201 architectures like NASLib's?

For NB201 architectures of NASLib's zero-cost table (``nb201_zc_naslib_subset.parquet``:
NASLib's scores on CIFAR-10 and its val accuracy), this builds each network as given (one
seeded initialisation), scores it with :func:`predictors.zero_cost.scores` on one batch, and
prints Spearman rank correlations (scipy): ours vs val accuracy, NASLib's column vs val
accuracy on the same rows, and ours vs NASLib's score.  We have no CIFAR-10 here, so the
batch is ``--dataset`` images resized to ``--resolution`` and repeated to 3 channels
(digits: 8x8 greyscale upsampled to 32x32).  NASLib's table was computed on batches of 32
(its jacov is at most -32, which bounds -B), hence the default ``--batch-size 32``.

Timings are per architecture in one process on one torch thread (build excluded);
snip, grad_norm and fisher share one forward/backward, whose time each of them shows.
With ``--workers N`` the architectures are split over N Ray tasks.  ``--out`` keeps the
per-architecture scores and is read back on the next run, so with ``--max-seconds`` a long
check proceeds in slices (the table covers what is scored so far).

    python bench/zero_cost_check.py --num-archs 100 [--workers 2] [--C 16 --N 5]
    python bench/zero_cost_check.py --out zc.parquet --max-seconds 400   # repeat until complete
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from predictors.zero_cost import LOSS_PROXIES, PROXIES, proxy_batch, proxy_name, scores
from search_spaces import get_space

#: our proxy -> NASLib's column
NASLIB_COLUMN = {"naswot": "nwot"}


def score_rows(
    arch_strs: list[str],
    x: torch.Tensor,
    y: torch.Tensor,
    proxies: list[str],
    build: dict[str, Any],
    seed: int,
    deadline: float,
) -> list[dict[str, Any]]:
    """Scores and per-proxy seconds of each architecture (one group per shared pass), until
    the wall clock passes ``deadline``."""
    torch.set_num_threads(1)
    space = get_space("nb201")
    groups = [[p] for p in proxies if p not in LOSS_PROXIES] + [[p for p in proxies if p in LOSS_PROXIES]]
    rows = []
    for text in arch_strs:
        if time.time() > deadline:
            break
        torch.manual_seed(seed)
        net = space.build(space.parse(text), num_classes=10, in_shape=tuple(x.shape[1:]), **build)
        row: dict[str, Any] = {"arch_str": text}
        for group in filter(None, groups):
            start = time.perf_counter()
            row.update(scores(net, x, y, group))
            row.update({f"{p}_s": time.perf_counter() - start for p in group})
        rows.append(row)
    return rows


def run_ray(arch_strs: list[str], workers: int, x: torch.Tensor, y: torch.Tensor, *args: Any) -> list[dict[str, Any]]:
    """``score_rows`` over ``workers`` chunks as Ray tasks, the batch put in the object store once."""
    import ray

    chunks = [arch_strs[i::workers] for i in range(workers)]
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(score_rows)
        xr, yr = ray.put(x), ray.put(y)
        return [row for part in ray.get([task.remote(c, xr, yr, *args) for c in chunks]) for row in part]
    finally:
        ray.shutdown()


def cached(path: Path | None, proxies: list[str], setting: str) -> pd.DataFrame:
    """Rows of an earlier run's ``--out`` with the same setting and every requested proxy."""
    if path is None or not path.exists():
        return pd.DataFrame(columns=["arch_str"])
    old = pd.read_parquet(path)
    wanted = proxies + [f"{p}_s" for p in proxies]
    keep = old.reindex(columns=wanted).notna().all(axis=1) & (old.get("setting") == setting)
    return old[keep].drop_duplicates("arch_str", keep="last")


def srcc(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", type=Path, default=Path("../shared/benchmarks"))
    parser.add_argument("--dataset", default="digits", help="raynas.data spec of the scoring batch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=32, help="images are resized to this square size")
    parser.add_argument("--num-archs", type=int, default=0, help="random subset of the table (0: all)")
    parser.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated proxy names")
    parser.add_argument("--C", type=int, default=16, help="NB201 stem width")
    parser.add_argument("--N", type=int, default=5, help="NB201 cells per stage")
    parser.add_argument("--workers", type=int, default=0, help="Ray tasks (0: a plain loop in this process)")
    parser.add_argument("--seed", type=int, default=0, help="subset, batch and initialisation seed")
    parser.add_argument("--out", type=Path, help="per-architecture scores (Parquet), reused by the next run")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop scoring new archs after this (0: never)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    table = pd.read_parquet(args.benchmarks / "nb201_zc_naslib_subset.parquet")
    if 0 < args.num_archs < len(table):
        table = table.sample(n=args.num_archs, random_state=args.seed).sort_index()
    proxies = list(dict.fromkeys(proxy_name(p.strip()) for p in args.proxies.split(",")))
    x, y = proxy_batch(args.dataset, args.batch_size, (3, args.resolution, args.resolution), seed=args.seed)
    build = {"C": args.C, "N": args.N}
    setting = (f"nb201 C={args.C} N={args.N}, {args.dataset} batch {args.batch_size} "
               f"at 3x{args.resolution}x{args.resolution}, seed {args.seed}")
    done = cached(args.out, proxies, setting)
    todo = [a for a in table["arch_str"] if a not in set(done["arch_str"])]
    deadline = time.time() + args.max_seconds if args.max_seconds > 0 else math.inf
    start = time.perf_counter()
    run_args = (x, y, proxies, build, args.seed, deadline)
    rows = run_ray(todo, args.workers, *run_args) if args.workers > 0 and todo else score_rows(todo, *run_args)
    wall = time.perf_counter() - start
    scored = pd.concat([done, pd.DataFrame(rows).assign(setting=setting)], ignore_index=True)
    if args.out:
        scored.to_parquet(args.out)
    ours = table.merge(scored.add_prefix("ours_"), left_on="arch_str", right_on="ours_arch_str")
    if len(ours) < 2:
        raise SystemExit(f"{setting}: {len(ours)} archs scored so far; raise --max-seconds")
    acc = ours["val_accuracy"].to_numpy()
    print(f"{setting}: {len(ours)} of {len(table)} archs of NASLib's table scored ({len(rows)} new in {wall:.0f} s, "
          f"{max(args.workers, 1)} worker(s), 1 torch thread each)\n")
    print("| proxy | SRCC ours vs val_accuracy | SRCC NASLib vs val_accuracy | SRCC ours vs NASLib | s/arch |")
    print("| --- | --- | --- | --- | --- |")
    for p in proxies:
        mine, theirs = ours[f"ours_{p}"].to_numpy(), ours[NASLIB_COLUMN.get(p, p)].to_numpy()
        seconds = ours[f"ours_{p}_s"].mean()
        print(f"| {p} | {srcc(mine, acc):.3f} | {srcc(theirs, acc):.3f} | {srcc(mine, theirs):.3f} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
