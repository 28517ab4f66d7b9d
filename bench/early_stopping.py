"""Early stopping on the NB201 table: no stopping vs ASHA vs PredictiveStoppingScheduler.

N random architectures arrive one after another; each reports its epoch-12 validation
accuracy, the scheduler decides, and a trial that continues reports its epoch-200 value and
completes.  The schedulers are driven directly (on_trial_result / on_trial_complete with
stand-in trials, no Tune) so many seeds are cheap; compute is counted in epochs and in the
table's training seconds (``train_time_per_epoch_s``).  ``--tune-trials`` then runs one real
``tune.Tuner`` with BenchmarkTrainable and the predictive scheduler, end to end.

    python bench/early_stopping.py --benchmark ../shared/benchmarks/nb201_all.parquet --trials 200 500 --seeds 5
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from predictors.gp import GPSurrogate
from predictors.stopping import PredictiveStoppingScheduler
from raynas.benchmarks import TabularBenchmark

SHORT, FULL = 12, 200


def schedulers(table: TabularBenchmark) -> dict[str, Callable[[], Any]]:
    """Name -> factory of a fresh scheduler (metric val_acc, max, time attribute epoch)."""

    def cost_features(config: dict) -> list[float]:
        info = table.info(table.space.decode(config))
        return [np.log(info["params"]), np.log(info["flops"])]

    common = {"time_attr": "epoch", "metric": "val_acc", "mode": "max", "grace_period": SHORT, "max_t": FULL}
    return {
        "no stopping": FIFOScheduler,
        "ASHA (grace 12, rf 3)": lambda: AsyncHyperBandScheduler(reduction_factor=3, **common),
        "predictive, z=1": lambda: PredictiveStoppingScheduler(**common),
        "predictive, z=2": lambda: PredictiveStoppingScheduler(z=2.0, **common),
        "predictive + log params/flops, z=1": lambda: PredictiveStoppingScheduler(features=cost_features, **common),
        "predictive, GP, z=1": lambda: PredictiveStoppingScheduler(predictor=GPSurrogate(max_train=None), **common),
    }


def simulate(table: TabularBenchmark, scheduler: Any, rows: np.ndarray) -> dict[str, float]:
    """Run ``rows`` through ``scheduler`` one after another; compute used and what was found."""
    short_val, full_val = table.column("valid", SHORT), table.column("valid", FULL)
    full_test, per_epoch = table.column("test", FULL), table.extras["train_time_per_epoch_s"]
    epochs = seconds = 0.0
    completed = []
    for i, row in enumerate(rows):
        trial = SimpleNamespace(trial_id=f"t{i}", config=table.space.encode(table.archs[row]))
        scheduler.on_trial_add(None, trial)
        short = {"epoch": SHORT, "val_acc": short_val[row], "done": False}
        if scheduler.on_trial_result(None, trial, short) == TrialScheduler.STOP:
            scheduler.on_trial_complete(None, trial, short)
            epochs, seconds = epochs + SHORT, seconds + SHORT * per_epoch[row]
            continue
        full = {"epoch": FULL, "val_acc": full_val[row], "done": True}
        scheduler.on_trial_result(None, trial, full)
        scheduler.on_trial_complete(None, trial, full)
        epochs, seconds = epochs + FULL, seconds + FULL * per_epoch[row]
        completed.append(row)
    completed = np.array(completed)
    return {
        "epochs": epochs,
        "seconds": seconds,
        "completed": len(completed),
        "best_test": float(full_test[completed].max()),
        "test_of_best_val": float(full_test[completed[np.argmax(full_val[completed])]]),
    }


def pm(values: list[float], fmt: str = ".2f") -> str:
    return f"{np.mean(values):{fmt}} ± {np.std(values):{fmt}}"


def bench_simulated(table: TabularBenchmark, trials: int, seeds: int) -> None:
    factories = schedulers(table)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in factories}
    wall: dict[str, float] = {name: 0.0 for name in factories}
    for seed in range(seeds):
        rows = np.random.default_rng(seed).choice(len(table), trials, replace=False)
        for name, factory in factories.items():
            start = time.perf_counter()
            runs[name].append(simulate(table, factory(), rows))
            wall[name] += time.perf_counter() - start
    base = runs["no stopping"]
    print(f"\n{trials} random NB201 architectures (CIFAR-10), {seeds} seeds, decisions on val_acc at epoch {SHORT}\n")
    print("| scheduler | epochs (% of none) | train seconds (% of none) | completed trials | best test acc | "
          "regret vs none | test acc of best-val trial | scheduler s / run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, got in runs.items():
        epoch_pct = [100 * g["epochs"] / b["epochs"] for g, b in zip(got, base)]
        second_pct = [100 * g["seconds"] / b["seconds"] for g, b in zip(got, base)]
        regret = [b["best_test"] - g["best_test"] for g, b in zip(got, base)]
        print(
            f"| {name} | {pm([g['epochs'] for g in got], '.0f')} ({pm(epoch_pct, '.1f')}) "
            f"| {pm([g['seconds'] / 3600 for g in got], '.1f')} h ({pm(second_pct, '.1f')}) "
            f"| {pm([g['completed'] for g in got], '.1f')} | {pm([g['best_test'] for g in got])} | {pm(regret)} "
            f"| {pm([g['test_of_best_val'] for g in got])} | {wall[name] / seeds:.2f} |"
        )


def bench_tune(table: TabularBenchmark, trials: int, seed: int) -> None:
    """Real Tune runs: the same seeded random search through BenchmarkTrainable, per scheduler."""
    import ray
    from ray import tune

    from raynas.trainables import BenchmarkTrainable
    from searchers import make_searcher

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    common = {"time_attr": "epoch", "grace_period": SHORT, "max_t": FULL}
    runs = {
        "no stopping": FIFOScheduler(),
        "ASHA (grace 12, rf 3)": AsyncHyperBandScheduler(reduction_factor=3, **common),
        "predictive, z=1": PredictiveStoppingScheduler(**common),
    }
    rows = []  # printed after all runs: Tune prints its own banner per run
    for name, scheduler in runs.items():
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as storage:
            tuner = tune.Tuner(
                tune.with_parameters(BenchmarkTrainable, benchmark=table),
                param_space={"space": "nb201"},
                tune_config=tune.TuneConfig(
                    search_alg=make_searcher("random", table.space, seed=seed),
                    scheduler=scheduler,
                    metric="val_acc",
                    mode="max",
                    num_samples=trials,
                    max_concurrent_trials=2,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(storage_path=storage, name="early_stopping", verbose=0),
            )
            results = tuner.fit()
        wall = time.perf_counter() - start
        epochs = [r.metrics["epoch"] for r in results]
        best = max(r.metrics["test_acc"] for r in results if r.metrics["epoch"] == FULL)
        rows.append(
            f"| {name} | {results.num_errors} | {epochs.count(SHORT)} | {epochs.count(FULL)} "
            f"| {sum(epochs)} ({100 * sum(epochs) / (FULL * len(results)):.1f}) | {best:.2f} | {wall:.1f} |"
        )
    ray.shutdown()
    print(f"\nReal Tune runs: {trials} trials, random search (seed {seed}), BenchmarkTrainable, 2 concurrent\n")
    print("| scheduler | errors | stopped at epoch 12 | ran to epoch 200 | epochs (% of none) | best test acc | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--trials", type=int, nargs="*", default=[200, 500])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-trials", type=int, default=100, help="real Tune run size (0: skip)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    table = TabularBenchmark.from_parquet(args.benchmark, "nb201", "cifar10")
    for trials in args.trials:
        bench_simulated(table, trials, args.seeds)
    if args.tune_trials:
        bench_tune(table, args.tune_trials, seed=0)


if __name__ == "__main__":
    main()
