"""What Ray Tune costs per trial: the same 100-query REA search on the NB201 table, once in
a plain Python loop and once through ``tune.Tuner`` (BenchmarkTrainable, reuse_actors).

    python bench/tune_overhead.py --benchmark ../shared/benchmarks/nb201_all.parquet --queries 100
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import ray
from ray import tune

from raynas.benchmarks import TabularBenchmark
from raynas.trainables import BenchmarkTrainable
from searchers import make_searcher


def plain_loop(table: TabularBenchmark, queries: int, seed: int) -> tuple[float, float]:
    searcher = make_searcher("rea", table.space, "val_acc", "max", seed)
    start = time.perf_counter()
    for i in range(queries):
        arch = table.space.decode(searcher.suggest(str(i)))
        searcher.on_trial_complete(str(i), {"val_acc": table.query(arch, "valid")})
    return time.perf_counter() - start, searcher.best()[1]


def through_tune(table: TabularBenchmark, queries: int, seed: int, concurrency: int) -> tuple[float, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            tune.with_parameters(BenchmarkTrainable, benchmark=table),
            param_space={"space": "nb201"},
            tune_config=tune.TuneConfig(
                search_alg=make_searcher("rea", table.space, seed=seed),
                metric="val_acc",
                mode="max",
                num_samples=queries,
                max_concurrent_trials=concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=storage, name="overhead", verbose=0),
        )
        results = tuner.fit()
        best = results.get_best_result().metrics["val_acc"]
    return time.perf_counter() - start, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    table = TabularBenchmark.from_parquet(args.benchmark, "nb201", "cifar10")
    loop_s, loop_best = plain_loop(table, args.queries, args.seed)
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - start
    tune_s, tune_best = through_tune(table, args.queries, args.seed, args.concurrency)
    n = args.queries
    print(f"REA, {n} NB201 queries, {os.cpu_count()} CPUs, Tune concurrency {args.concurrency}\n")
    print("| run | wall s | ms / trial | best val_acc |\n| --- | --- | --- | --- |")
    print(f"| plain loop | {loop_s:.2f} | {1e3 * loop_s / n:.1f} | {loop_best:.2f} |")
    print(f"| Tune (reuse_actors) | {tune_s:.2f} | {1e3 * tune_s / n:.1f} | {tune_best:.2f} |")
    print(f"\nTune overhead per trial: {1e3 * (tune_s - loop_s) / n:.0f} ms; ratio {tune_s / loop_s:.0f}x; "
          f"ray.init {init_s:.1f} s (not counted)")


if __name__ == "__main__":
    main()
