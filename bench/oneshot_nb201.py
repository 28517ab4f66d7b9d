"""Differentiable one-shot search vs supernet random search vs stand-alone REA at equal compute.

Every method searches NB201 cells on digits (``C=8, N=1`` networks, as ``supernet_ranking.py``)
for the same compute on this machine: ``--budget-s`` CPU seconds per run (``time.process_time``
of this single-threaded process, so that what other users of a shared machine run does not
count; wall time on an idle machine is about the same); the cell it returns is scored by the NB201 table's CIFAR-10 test accuracy
(``nb201_all.parquet``: 200-epoch training, mean over seeds), over ``--seeds`` seeds:

* ``darts`` / ``gdas`` / ``drnas``: ``DifferentiableTrainable`` for as many epochs as fit the
  budget (one calibration epoch measures them); the derived cell of the last epoch.  The
  architecture weights' Adam lr is ``--arch-lr`` (default 3e-3, 10x DARTS': a digits search
  takes about 100x fewer steps than DARTS' CIFAR-10 search); everything else is the default.
* ``darts+``: the same DARTS run stopped the first epoch its cell holds >= 2 skip-connections
  (``skip_stop=2``), read from the DARTS run's per-epoch cells (its compute: up to that epoch).
* ``darts2``: second-order DARTS (``order=2``, the unrolled architecture gradient), its
  epochs fitted to the same budget (each costs about 3x a first-order epoch).
* ``supernet + random``: ``SupernetTrainable`` (its default recipe) for 70% of the budget, then
  random cells scored by its ``rank_by`` score (BN re-calibrated) until the budget ends.
* ``REA stand-alone``: regularized evolution, each cell trained from scratch (``epochs`` of the
  stand-alone trainer) until the budget ends; the best validation accuracy's cell.

    nice python bench/oneshot_nb201.py --budget-s 25 --seeds 3
    nice python bench/oneshot_nb201.py --budget-s 25 --seeds 3 --methods darts,gdas,drnas --arch-warmup 0.3

The table's own reference points are printed too: the mean over all cells (what a random cell
scores) and the best cell.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from raynas.benchmarks import TabularBenchmark
from raynas.data import load_dataset
from raynas.trainables.differentiable import DifferentiableTrainable
from raynas.trainables.mixed_net import skip_count
from raynas.trainables.standalone import ArchTraining
from raynas.trainables.supernet import SupernetTrainable, path_score
from search_spaces import get_space
from searchers.evolution import RegularizedEvolution

SPACE = get_space("nb201")
BUILD = {"C": 8, "N": 1}
DATASET = "digits"
STANDALONE_EPOCHS = 4
SUPERNET_SHARE = 0.7
METHODS = ("darts", "darts2", "gdas", "drnas", "supernet", "rea")
DIFFERENTIABLE = {"darts": {"method": "darts"}, "darts2": {"method": "darts", "order": 2}, "gdas": {"method": "gdas"},
                  "drnas": {"method": "drnas"}}  # fmt: skip
TABLE = Path(os.environ.get("RAYNAS_BENCHMARKS", Path(__file__).resolve().parents[2] / "shared" / "benchmarks")) / "nb201_all.parquet"


def epochs_for(make: Callable[[int], Any], budget_s: float) -> int:
    """Epochs of a trainable that fit ``budget_s`` CPU seconds: the fastest of three timed epochs
    after a warm-up epoch."""
    trainable = make(10)
    trainable.train()
    times = []
    for _ in range(3):
        start = time.process_time()
        trainable.train()
        times.append(time.process_time() - start)
    trainable.stop()
    return max(1, int(budget_s / min(times)))


def differentiable(method: str, seed: int, epochs: int, arch_lr: float, warmup: float) -> dict[str, Any]:
    start = time.process_time()
    trainable = DifferentiableTrainable(config={"dataset": DATASET, "build": BUILD, **DIFFERENTIABLE[method], "epochs": epochs,
                                                "seed": seed, "arch_lr": arch_lr,
                                                "arch_warmup": int(warmup * epochs)})  # fmt: skip
    history = []
    for _ in range(epochs):
        result = trainable.train()
        history.append((result["arch"], result["skip_count"], time.process_time() - start))
    trainable.stop()
    return {"arch": history[-1][0], "seconds": history[-1][2], "history": history}


def darts_plus(run: dict[str, Any], skip_stop: int = 2) -> dict[str, Any]:
    """The DARTS run as ``skip_stop`` would have ended it."""
    for arch, skips, seconds in run["history"]:
        if skips >= skip_stop:
            return {"arch": arch, "seconds": seconds}
    return {"arch": run["arch"], "seconds": run["seconds"]}


def supernet_random(seed: int, epochs: int, budget_s: float) -> dict[str, Any]:
    start = time.process_time()
    trainable = SupernetTrainable(config={"dataset": DATASET, "build": BUILD, "probe_archs": 0, "epochs": epochs,
                                          "seed": seed})  # fmt: skip
    for _ in range(epochs):
        trainable.train()
    best, scored = None, 0
    for arch in SPACE.sample_unique(2000, 1000 + seed):
        if time.process_time() - start >= budget_s and scored:
            break
        acc = path_score(trainable.model, arch.spec, trainable.data, trainable.settings)
        scored += 1
        if best is None or acc > best[1]:
            best = (arch, acc)
    trainable.stop()
    return {"arch": str(best[0]), "seconds": time.process_time() - start, "evaluated": scored}


def rea_standalone(seed: int, budget_s: float, data: Any) -> dict[str, Any]:
    start = time.process_time()
    searcher = RegularizedEvolution(SPACE, "val_acc", "max", seed, population_size=10, sample_size=3)
    best, count = None, 0
    while time.process_time() - start < budget_s:
        config = searcher.suggest(str(count))
        training = ArchTraining({**config, "space": "nb201", "dataset": DATASET, "epochs": STANDALONE_EPOCHS,
                                 "build": BUILD, "seed": seed, "latency_runs": 0}, data)  # fmt: skip
        for _ in range(STANDALONE_EPOCHS):
            result = training.step()
        searcher.on_trial_complete(str(count), {"val_acc": result["val_acc"]})
        count += 1
        if best is None or result["val_acc"] > best[1]:
            best = (str(training.arch), result["val_acc"])
    return {"arch": best[0], "seconds": time.process_time() - start, "evaluated": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=25.0, help="CPU seconds of each search run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--arch-lr", type=float, default=3e-3, help="Adam lr of the architecture weights (DARTS: 3e-4 "
                        "over ~20k steps; a digits search takes ~100x fewer)")  # fmt: skip
    parser.add_argument("--arch-warmup", type=float, default=0.0, help="share of the epochs before the architecture "
                        "weights train (arch_warmup; PC-DARTS / DrNAS: 0.3)")  # fmt: skip
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {METHODS}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = TabularBenchmark.from_parquet(args.table, SPACE, "cifar10")
    data = load_dataset(DATASET)
    budget = args.budget_s

    def diff_maker(method: str) -> Callable[[int], Any]:
        return lambda e: DifferentiableTrainable(config={"dataset": DATASET, "build": BUILD, **DIFFERENTIABLE[method],
                                                         "epochs": e, "seed": 99})  # fmt: skip

    methods = [m.strip() for m in args.methods.split(",")]
    if unknown := sorted(set(methods) - set(METHODS)):
        parser.error(f"unknown methods {unknown}; choose from {METHODS}")
    epochs = {m: epochs_for(diff_maker(m), budget) for m in DIFFERENTIABLE if m in methods}
    if "supernet" in methods:
        epochs["supernet"] = epochs_for(lambda e: SupernetTrainable(config={"dataset": DATASET, "build": BUILD,
                                    "probe_archs": 0, "epochs": e, "seed": 99}), SUPERNET_SHARE * budget)  # fmt: skip
    print(f"budget {budget:.0f} CPU s per run; epochs that fit: {epochs}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in range(args.seeds):
        for method in [m for m in DIFFERENTIABLE if m in methods]:
            run = differentiable(method, seed, epochs[method], args.arch_lr, args.arch_warmup)
            runs.setdefault(method, []).append(run)
            if method == "darts":
                runs.setdefault("darts+ (skip_stop=2)", []).append(darts_plus(run))
            skips = " ".join(str(s) for _, s, _ in run["history"])
            print(f"seed {seed} {method:6s} skip count per epoch: {skips}", flush=True)
        if "supernet" in methods:
            runs.setdefault("supernet + random", []).append(supernet_random(seed, epochs["supernet"], budget))
        if "rea" in methods:
            runs.setdefault("REA stand-alone", []).append(rea_standalone(seed, budget, data))

    column = table.column("test")
    print(f"\nNB201 cells found on digits, scored by the table's CIFAR-10 test accuracy (%); {args.seeds} seeds, "
          f"{budget:.0f} s CPU budget per run, arch_lr {args.arch_lr}, arch_warmup {args.arch_warmup:.0%} of the epochs\n")  # fmt: skip
    print("| method | CIFAR-10 test acc (mean ± std) | per seed | skip count | CPU s | cells evaluated |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, found in runs.items():
        accs = [table.query(SPACE.parse(r["arch"]), "test") for r in found]
        skips = [skip_count(SPACE.parse(r["arch"])) for r in found]
        evaluated = "-" if "evaluated" not in found[0] else f"{np.mean([r['evaluated'] for r in found]):.0f}"
        print(f"| {name} | {np.mean(accs):.2f} ± {np.std(accs):.2f} | {', '.join(f'{a:.2f}' for a in accs)} | "
              f"{np.mean(skips):.1f} | {np.mean([r['seconds'] for r in found]):.0f} | {evaluated} |")  # fmt: skip
    print(f"| (table: mean of all cells) | {np.mean(column):.2f} | | | | |")
    print(f"| (table: best cell) | {np.max(column):.2f} | | | | |")
    for name, found in runs.items():
        print(f"{name}: " + "; ".join(r["arch"] for r in found))


if __name__ == "__main__":
    main()
