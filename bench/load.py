"""Load: thousands of NB201 table trials through Ray Tune, the way ``raynas search`` runs them.

For each searcher: wall time, trials per second (first and last 10 %), peak resident memory
of the largest Ray worker and of all Ray processes together (sampled), the driver's and the
workers' resident memory every 1,000 completed trials with its growth per 1,000 over the second
half of the run (a leak grows without bound; a bounded searcher levels off), and the
searcher's ``suggest`` latency p50 / p99 around 100, 1,000 and N observations, with the growth
exponent between 100 and N (1.0 = linear; a capped surrogate should stay near 0).

    python bench/load.py --trials 10000 --searchers rea,embedding-gp,tpe \
        [--embeddings /path/nb201_embeddings.parquet] [--alone]

``--alone`` drives each searcher without Tune, to tell its own costs from Tune's.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time

import numpy as np
import psutil
import ray
from ray import tune

from raynas.benchmarks import TabularBenchmark
from raynas.experiment import summarise
from raynas.live_table import LiveTrialsTable
from raynas.trainables import BenchmarkTrainable
from searchers import make_searcher

MB = 2**20


class MemorySampler(threading.Thread):
    """Peak RSS of every process under this driver (raylet, GCS, workers), sampled."""

    def __init__(self, period_s: float = 0.5):
        super().__init__(daemon=True)
        self.period_s = period_s
        self.peak_total = 0
        self.peak_worker = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.period_s):
            children = children_rss()
            self.peak_total = max(self.peak_total, sum(rss for _, rss in children))
            self.peak_worker = max(self.peak_worker, max((rss for worker, rss in children if worker), default=0))


def children_rss() -> list[tuple[bool, int]]:
    """(is a Ray worker, resident bytes) of every process under this driver."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            found.append((" ".join(process.cmdline()[:1]).startswith("ray::"), process.memory_info().rss))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def resident_mb() -> tuple[float, float]:
    """Resident memory (MB) of this driver process and of all its Ray workers together."""
    workers = sum(rss for worker, rss in children_rss() if worker)
    return psutil.Process().memory_info().rss / MB, workers / MB


def growth_per_1000(samples: list[tuple[int, float, float]], column: int) -> float:
    """MB per 1,000 trials: the slope of a line through the second half of the samples."""
    late = samples[len(samples) // 2 :]
    if len(late) < 2:
        return float("nan")
    return 1000 * float(np.polyfit([n for n, *_ in late], [row[column] for row in late], 1)[0])


def timed_suggest(searcher: object, log: list[tuple[int, float]]) -> None:
    """Record (observations so far, seconds) for every ``suggest`` of ``searcher``."""
    suggest = searcher.suggest

    def wrapper(trial_id: str):
        start = time.perf_counter()
        config = suggest(trial_id)
        log.append((len(searcher.history), time.perf_counter() - start))
        return config

    searcher.suggest = wrapper


def run_one(name: str, table: TabularBenchmark, trials: int, concurrency: int, options: dict, seed: int) -> dict:
    searcher = make_searcher(name, table.space, "val_acc", "max", seed, **options)
    latencies: list[tuple[int, float]] = []
    timed_suggest(searcher, latencies)
    finished: list[float] = []
    memory: list[tuple[int, float, float]] = []  # (trials completed, driver MB, workers MB)

    class Clock(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            finished.append(time.perf_counter())
            if len(finished) % 1000 == 0:
                memory.append((len(finished), *resident_mb()))

    with tempfile.TemporaryDirectory() as storage:
        start = time.perf_counter()
        tuner = tune.Tuner(
            tune.with_parameters(BenchmarkTrainable, benchmark=table),
            param_space={"space": "nb201", "dataset": table.dataset},
            tune_config=tune.TuneConfig(
                search_alg=searcher, metric="val_acc", mode="max", num_samples=trials,
                max_concurrent_trials=concurrency, reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=storage, name=f"load-{name}", verbose=0,
                                      callbacks=[Clock(), LiveTrialsTable(f"{storage}/load-{name}")]),  # as raynas search
        )
        results = tuner.fit()
        fit_s = time.perf_counter() - start
        outcome = summarise(results, "val_acc", "max")
        wall_s = time.perf_counter() - start
        errors = sum(r.error is not None for r in results)
    return {
        "trials": outcome.num_trials, "errors": errors, "fit_s": fit_s, "wall_s": wall_s,
        "best": outcome.best_metrics.get("test_acc"), "latencies": latencies, "finished": np.array(finished) - start,
        "memory": memory,
    }


def searcher_alone(name: str, table: TabularBenchmark, trials: int, options: dict, seed: int) -> None:
    """The searcher without Tune: ``suggest`` then the table's value, one trial at a time; its
    latency at 100 / 1,000 / the end and this process's memory growth per 1,000 trials (Tune's
    per-trial state left out, so what grows is the searcher's)."""
    searcher = make_searcher(name, table.space, "val_acc", "max", seed, **options)
    latencies, memory, process = [], [], psutil.Process()
    for i in range(trials):
        start = time.perf_counter()
        config = searcher.suggest(f"t{i}")
        latencies.append((i, time.perf_counter() - start))
        if config is None or isinstance(config, str):  # Tune's "finished": the space is exhausted
            break
        searcher.on_trial_complete(f"t{i}", {"val_acc": table.query(table.space.decode(config), split="valid"), **config})
        if (i + 1) % 1000 == 0:
            memory.append((i + 1, process.memory_info().rss / MB, 0.0))
            print(f"  {name}: {i + 1} trials, suggest ms p50 / p99 {_ms(window(latencies, i))}, "
                  f"process {memory[-1][1]:.0f} MB", flush=True)  # fmt: skip
    done = len(latencies) - 1 if isinstance(config, str) or config is None else len(latencies)
    cells = [_ms(window(latencies, n - 1)) for n in (100, min(1000, done), done)]
    print(f"| {name} (alone) | {done} | {' | '.join(cells)} | {_mb(memory, 1)} |", flush=True)


def window(latencies: list[tuple[int, float]], around: int, width: int = 50) -> np.ndarray:
    """Suggest seconds with ``around - width < observations <= around``."""
    return np.array([s for n, s in latencies if around - width < n <= around])


def throughput(finished: np.ndarray, fraction: float = 0.1) -> tuple[float, float]:
    """Trials per second over the first and the last ``fraction`` of completions."""
    k = max(2, int(len(finished) * fraction))
    first, last = np.sort(finished)[:k], np.sort(finished)[-k:]
    return (k - 1) / max(first[-1] - first[0], 1e-9), (k - 1) / max(last[-1] - last[0], 1e-9)


def _ms(seconds: np.ndarray) -> str:
    return f"{1e3 * np.median(seconds):.1f} / {1e3 * np.quantile(seconds, 0.99):.1f}" if len(seconds) else "-"


def _mb(samples: list[tuple[int, float, float]], column: int) -> str:
    """Memory at the first and the last sample, and its growth per 1,000 trials."""
    if not samples:
        return "-"
    return f"{samples[0][column]:.0f} / {samples[-1][column]:.0f}, {growth_per_1000(samples, column):+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--searchers", default="rea,embedding-gp")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embeddings", default="one-hot", help="embedding table (Parquet) for embedding-*, or one-hot")
    parser.add_argument("--alone", action="store_true", help="each searcher without Tune: its own latency and memory")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    table = TabularBenchmark.from_parquet(args.benchmark, "nb201", args.dataset)
    if args.alone:
        print("| searcher | trials | suggest ms p50 / p99 at 100 obs | at 1,000 | at the end | process MB at 1k / end, per 1k |")
        print("|" + " --- |" * 6, flush=True)
        for name in args.searchers.split(","):
            options = {"embeddings": args.embeddings} if name.startswith("embedding-") else {}
            searcher_alone(name, table, args.trials, options, args.seed)
        return
    ray.init(include_dashboard=False, log_to_driver=False)
    sampler = MemorySampler()
    sampler.start()
    print(f"{args.trials} NB201 ({args.dataset}) table trials per searcher through Tune (fewer where a searcher "
          f"exhausts the space), concurrency {args.concurrency}, reuse_actors, {os.cpu_count()} CPUs; embeddings: "
          f"{args.embeddings}\n")  # fmt: skip
    print("| searcher | trials (errors) | wall s | trials/s first / last 10 % | suggest ms p50 / p99 at 100 obs "
          "| at 1,000 | at the end | growth exponent | driver MB at 1k / end, per 1k | workers MB at 1k / end, "
          "per 1k | worker peak MB | all Ray processes peak MB | best test_acc |")  # fmt: skip
    print("|" + " --- |" * 13, flush=True)
    for name in args.searchers.split(","):
        options = {"embeddings": args.embeddings} if name.startswith("embedding-") else {}
        sampler.peak_total = sampler.peak_worker = 0
        run = run_one(name, table, args.trials, args.concurrency, options, args.seed)
        lo, hi = min(100, run["trials"]), run["trials"]
        early, middle, late = (window(run["latencies"], n) for n in (lo, min(1000, hi), hi))
        growth = np.log(np.median(late) / np.median(early)) / np.log(hi / lo) if len(early) and len(late) else np.nan
        first_tps, last_tps = throughput(run["finished"])
        print(f"| {name} | {run['trials']} ({run['errors']}) | {run['wall_s']:.0f} | {first_tps:.1f} / {last_tps:.1f} "
              f"| {_ms(early)} | {_ms(middle)} | {_ms(late)} | {growth:.2f} | {_mb(run['memory'], 1)} "
              f"| {_mb(run['memory'], 2)} | {sampler.peak_worker / MB:.0f} | {sampler.peak_total / MB:.0f} "
              f"| {run['best']:.2f} |", flush=True)  # fmt: skip
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampler.stopped.set()
    print(f"\ndriver peak RSS over the whole run: {driver_peak / MB:.0f} MB")


if __name__ == "__main__":
    main()
