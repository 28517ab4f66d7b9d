"""The supernet's ranking against a benchmark table's column (the GPU-cluster protocol of
``bench/supernet_ranking.py --benchmark TABLE``).

A supernet of the full NB201 network is trained on the user's dataset with a recipe (the
``SupernetSettings`` defaults unless ``--set`` changes them), scores ``--num-archs``
architectures drawn from the table by inherited validation accuracy (Ray tasks, one per
GPU when asked), and is compared with the table's accuracy of the same dataset (the full
schedule, ``--truth-split``): Kendall tau, sparse Kendall tau (as the study's official
code: only the ground truth binned, at 1e-4 of accuracy, i.e. 0.01 percentage points) and
top-k overlap.  The same recipe and dataset are what the table was trained on, so
this measures the supernet, not a dataset shift.

Full scale (NB201 CIFAR-10, one GPU node)::

    python bench/supernet_ranking.py --benchmark nb201_all.parquet --dataset cifar10:/data/cifar10 \\
        --num-archs 1000 --set epochs=250 --set device=cuda --gpus-per-task 0.25
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from raynas.benchmarks import TabularBenchmark, check_table
from raynas.cli import _key_values
from raynas.data import load_dataset
from raynas.trainables.supernet import SupernetTrainable
from raynas.trainables.supernet_search import kendall_tau, score_archs, top_k_overlap, truth_binned_kendall_tau

TOP_KS = (5, 10, 50)


def table_ranking(
    table_path: str, dataset: str, recipe: dict[str, Any], num_archs: int, seed: int, truth_split: str,
    table_dataset: str | None = None, gpus_per_task: float = 0.0,
) -> dict[str, Any]:
    """Train the supernet of ``recipe`` on ``dataset`` (a data spec), score ``num_archs``
    table architectures, and the ranking metrics against the table's column."""
    name = table_dataset or dataset.split(":")[0].split("@")[0]
    name = check_table(table_path, "nb201", name)
    table = TabularBenchmark.from_parquet(table_path, "nb201", name)
    truth_all = table.column(truth_split)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(table), size=min(num_archs, len(table)), replace=False)
    archs, truth = [table.archs[r] for r in rows], truth_all[rows]
    trainable = SupernetTrainable(config={"probe_archs": 0, **recipe, "space": "nb201", "dataset": dataset, "seed": seed})
    start = time.perf_counter()
    while not (result := trainable.train())["done"]:
        pass
    train_s = time.perf_counter() - start
    state = trainable.supernet_state()
    trainable.stop()
    start = time.perf_counter()
    scores = np.asarray(score_archs(state, archs, load_dataset(dataset), num_gpus=gpus_per_task))
    ks = [k for k in TOP_KS if k <= len(archs)]
    return {
        "table": table_path, "table_dataset": name, "truth_split": truth_split, "dataset": dataset,
        "num_archs": len(archs), "seed": seed, "recipe": recipe, "epochs": result["epoch"],
        "tau": kendall_tau(scores, truth), "sparse_tau": truth_binned_kendall_tau(scores, truth),
        **{f"top{k}": top_k_overlap(scores, truth, k) for k in ks},
        "train_s": train_s, "score_s": time.perf_counter() - start, "mean_inherited_acc": float(scores.mean()),
    }  # fmt: skip


def run(args: Any) -> None:
    """``bench/supernet_ranking.py --benchmark ...``: one table ranking per seed, printed as JSON lines."""
    import ray

    recipe = _key_values(args.set, "--set")
    ray.init(address=args.address, include_dashboard=False, ignore_reinit_error=True)
    for seed in args.seeds:
        row = table_ranking(args.benchmark, args.dataset, recipe, args.num_archs, seed, args.truth_split,
                            args.table_dataset, args.gpus_per_task)  # fmt: skip
        print(json.dumps(row), flush=True)
