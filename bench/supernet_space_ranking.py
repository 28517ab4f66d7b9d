"""How well do the NB101 supernet (dynamic channels) and the DARTS supernet rank their cells?
Reduced scale, digits (``bench/supernet_ranking.py`` is the NB201 study with its ablation).

A seeded sample of ``--space`` cells is trained stand-alone (``StandaloneTrainable``, its own
recipe at ``--sa-epochs``) with two seeds; the ground truth is the mean test accuracy.  The
supernet of the same network size (``raynas.trainables.supernet_nb101`` / ``supernet_net``) is
trained with a recipe (the ``SupernetSettings`` defaults, then one knob switched) and scores
every cell by inherited validation accuracy.  Prints Kendall tau, sparse tau and top-k overlap
(mean ± sd over supernet seeds) and the noise ceiling (stand-alone seed 0 vs seed 1).

    python bench/supernet_space_ranking.py --space nb101          # ~9 min on 2 shared cores; results cached
    python bench/supernet_space_ranking.py --space darts --only "uniform, valid_acc (the defaults before)"

Every stand-alone run and trained supernet is cached under ``--cache``, so a second run
prints the tables at once.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raynas.data import load_dataset
from raynas.trainables import StandaloneTrainable
from raynas.trainables.supernet_search import score_texts
from search_spaces import get_space
from search_spaces.nb101 import prune

import supernet_ranking  # noqa: E402  (bench/ is the script's folder): its cache and ranking helpers

DATASET = "digits"
#: the measured network size of each space: small enough for digits on 2 cores
BUILDS: dict[str, dict[str, Any]] = {
    "nb101": {"stem_channels": 16, "num_stacks": 2, "num_modules_per_stack": 1},
    "darts": {"C": 8, "layers": 3},
}
#: (label, change to the base recipe): the evaluation-only switches reuse its trained supernet
RECIPES: list[tuple[str, dict[str, Any]]] = [
    ("uniform, valid_acc (the defaults before)", {}),
    ("bn_mode=running", {"bn_mode": "running"}),
    ("bn_mode=batch", {"bn_mode": "batch"}),
    ("sampling=fair", {"sampling": "fair"}),
    ("batch_size=32", {"batch_size": 32}),
    ("rank_by=train_valid_loss", {"rank_by": "train_valid_loss"}),
    ("sampling=strict_fair", {"sampling": "strict_fair"}),
    ("strict_fair + rank_by=train_valid_loss (the defaults)", {"sampling": "strict_fair", "rank_by": "train_valid_loss"}),
]


def train_standalone(space: Any, arch: Any, seed: int, epochs: int, batch_size: int) -> dict[str, Any]:
    start = time.perf_counter()
    config = {**space.encode(arch), "space": space.name, "dataset": DATASET, "epochs": epochs, "build": BUILDS[space.name],
              "batch_size": batch_size, "seed": seed}  # fmt: skip
    trainable = StandaloneTrainable(config=config)
    for _ in range(epochs):
        result = trainable.train()
    trainable.stop()
    return {"val_acc": result["val_acc"], "test_acc": result["test_acc"], "train_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=tuple(BUILDS), default="nb101")
    parser.add_argument("--num-archs", type=int, default=24)
    parser.add_argument("--arch-seed", type=int, default=2024)
    parser.add_argument("--sa-epochs", type=int, default=20, help="stand-alone training epochs")
    parser.add_argument("--sa-batch-size", type=int, default=32,
                        help="stand-alone batch size (at 64, 20 epochs leave NB101 nets unconverged on digits)")
    parser.add_argument("--sa-seeds", type=int, nargs=2, default=[0, 1])
    parser.add_argument("--sn-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="*", help="recipe labels to run (default: all)")
    parser.add_argument("--cache", type=Path, help="default /tmp/raynas_supernet_<space>_bench")
    args = parser.parse_args()
    args.cache = args.cache or Path(f"/tmp/raynas_supernet_{args.space}_bench")
    space, build = get_space(args.space), BUILDS[args.space]
    # the recipe the rows switch one knob of: the defaults before strict fairness and rank_by (cached runs stay valid)
    base: dict[str, Any] = {"space": args.space, "dataset": DATASET, "build": build, "probe_archs": 0,
                            "sampling": "uniform", "rank_by": "valid_acc"}  # fmt: skip
    (args.cache / "supernets").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    data = load_dataset(DATASET)
    archs = space.sample_unique(args.num_archs, args.arch_seed)
    texts = [str(a) for a in archs]

    sa = supernet_ranking.Cache(args.cache / f"standalone_{args.sa_epochs}_{args.sa_batch_size}.json")
    per_seed = {
        seed: np.array([sa.get(f"{t}|{seed}", lambda: train_standalone(space, a, seed, args.sa_epochs, args.sa_batch_size))["test_acc"]
                        for a, t in zip(archs, texts)])
        for seed in args.sa_seeds
    }  # fmt: skip
    target = np.mean(list(per_seed.values()), axis=0)
    sa_s = np.mean([r["train_s"] for r in sa.data.values()])
    if args.space == "nb101":
        vertices = [len(prune(*a.spec)[1]) for a in archs]
        cells = f"{len(archs)} distinct cells (seed {args.arch_seed}; {min(vertices)}..{max(vertices)} vertices after pruning)"
    else:
        cells = f"{len(archs)} distinct cells (seed {args.arch_seed})"
    print(f"setup: {args.space} {build} on {DATASET}, {cells}; stand-alone: {args.sa_epochs} epochs, batch "
          f"{args.sa_batch_size}, seeds {args.sa_seeds}, {sa_s:.1f} s per run, truth = mean test_acc; supernet seeds {args.sn_seeds}, "
          "scores = inherited valid accuracy; one torch thread")  # fmt: skip
    ceiling = supernet_ranking.ranking_metrics(*per_seed.values())
    print(f"stand-alone test accuracy: {target.min():.1f}..{target.max():.1f}%, median {np.median(target):.1f}%; "
          "noise ceiling (seed vs seed): " + ", ".join(f"{k} {v:.3f}" for k, v in ceiling.items()))

    scores_cache = supernet_ranking.Cache(args.cache / "scores.json")
    print("\n| recipe | Kendall tau | sparse tau | top-5 overlap | top-10 overlap | train s | score s | mean score (acc % or -loss) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, change in RECIPES:
        if args.only and label not in args.only:
            continue
        recipe = {**base, **change}
        rows = []
        for seed in args.sn_seeds:

            def run() -> dict[str, Any]:
                trained = supernet_ranking.trained_supernet(args.cache / "supernets", recipe, seed)
                start = time.perf_counter()
                scores = score_texts(supernet_ranking.with_eval_settings(trained["supernet"], recipe), texts, data)
                return {"scores": scores, "score_s": time.perf_counter() - start, "train_s": trained["train_s"]}

            rows.append(scores_cache.get(f"{supernet_ranking.recipe_key(recipe)}|{args.num_archs}|{args.arch_seed}|{seed}", run))
        metrics = [supernet_ranking.ranking_metrics(np.array(r["scores"]), target) for r in rows]
        cols = [supernet_ranking._mean_sd([m[k] for m in metrics]) for k in ("tau", "sparse_tau", "top5", "top10")]
        print(f"| {label} | {' | '.join(cols)} | {np.mean([r['train_s'] for r in rows]):.1f} | "
              f"{np.mean([r['score_s'] for r in rows]):.2f} | {np.mean([np.mean(r['scores']) for r in rows]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
