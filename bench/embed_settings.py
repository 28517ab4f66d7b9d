"""What the Jacobian feature settings cost and buy: input source, batch ``B``, resolution and
network size, each measured on the same random NB201 classes.

For every setting: extract features of ``--num-archs`` classes (Ray tasks), train an encoder on
them, and fit a GP on ``--labelled`` of the embeddings; report seconds per architecture, the
projected time for all 8,765 NB201 classes on this machine, and the GP's Spearman rank
correlation with the table's accuracy on the other classes (mean over ``--splits`` splits).

    python bench/embed_settings.py --benchmark ../shared/benchmarks/nb201_all.parquet \
        --num-archs 500 --settings digits-B64-C8N1,digits-B32-C8N1,digits16-B64-C8N1,synthetic-B64-C8N1
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import ray
import torch
from scipy.stats import spearmanr

from predictors.embed_pipeline import FeatureSettings, build_embeddings
from predictors.embeddings import ArchEmbeddings
from predictors.gp import GPSurrogate
from raynas.benchmarks import TabularBenchmark

#: name -> (feature settings, NB201 build options); names read source[size]-B<batch>-C<channels>N<cells>
PRESETS: dict[str, tuple[FeatureSettings, dict[str, int]]] = {
    "digits-B64-C8N1": (FeatureSettings("digits", batch_size=64, proj_dim=64), {"C": 8, "N": 1}),
    "digits-B32-C8N1": (FeatureSettings("digits", batch_size=32, proj_dim=32), {"C": 8, "N": 1}),
    "digits-B128-C8N1": (FeatureSettings("digits", batch_size=128, proj_dim=64), {"C": 8, "N": 1}),
    "digits16-B64-C8N1": (FeatureSettings("digits@16", batch_size=64, proj_dim=64), {"C": 8, "N": 1}),
    "digits-B64-C16N2": (FeatureSettings("digits", batch_size=64, proj_dim=64), {"C": 16, "N": 2}),
    "synthetic-B64-C8N1": (FeatureSettings("synthetic:512", batch_size=64, proj_dim=64), {"C": 8, "N": 1}),
}
NB201_CLASSES = 8765


def gp_srcc(embeddings: ArchEmbeddings, y: np.ndarray, labelled: int, splits: int) -> tuple[float, float]:
    values = []
    for seed in range(splits):
        train = np.random.default_rng(seed).choice(len(y), size=labelled, replace=False)
        test = np.setdiff1d(np.arange(len(y)), train)
        mean, _ = GPSurrogate().fit(embeddings.vectors[train], y[train]).predict(embeddings.vectors[test])
        values.append(spearmanr(mean, y[test]).statistic)
    return float(np.mean(values)), float(np.std(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--settings", default=",".join(PRESETS), help=f"comma-separated presets from {list(PRESETS)}")
    parser.add_argument("--num-archs", type=int, default=500)
    parser.add_argument("--labelled", type=int, default=100)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60, help="encoder training epochs")
    parser.add_argument("--workers", type=int, default=2, help="Ray CPUs for the extraction")
    args = parser.parse_args()
    unknown = [s for s in args.settings.split(",") if s not in PRESETS]
    if unknown:
        parser.error(f"unknown settings {unknown}; allowed: {list(PRESETS)}")
    torch.set_num_threads(1)

    table = TabularBenchmark.from_parquet(args.benchmark, "nb201", args.dataset)
    space = table.space
    classes = [a for a in dict.fromkeys(space.canonical(a) for a in space.enumerate()) if a in table]
    pick = np.random.default_rng(0).choice(len(classes), size=args.num_archs, replace=False)
    archs = [classes[i] for i in sorted(pick)]
    y = np.array([table.query(a, "valid") for a in archs])
    one_hot = gp_srcc(ArchEmbeddings.one_hot(space, archs), y, args.labelled, args.splits)

    print(f"{args.num_archs} random NB201 classes; GP on {args.labelled} labelled embeddings, SRCC with "
          f"{args.dataset} valid accuracy on the rest (mean ± std over {args.splits} splits); "
          f"one-hot config for reference: {one_hot[0]:.3f} ± {one_hot[1]:.3f}\n")
    print("| setting | input | B | net | s / arch (extract) | all NB201 classes, h | encoder s | SRCC |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.settings.split(","):
            settings, build = PRESETS[name]
            summary = build_embeddings(
                space, Path(scratch) / f"{name}.parquet", settings, archs=archs, builds={"nb201": build},
                train=True, train_options={"epochs": args.epochs, "batch_size": 256, "lr": 1e-3}, progress=False,
            )  # fmt: skip
            embeddings = ArchEmbeddings.from_parquet(summary.out, space)
            embeddings = ArchEmbeddings(space, archs, embeddings.vectors[embeddings.rows(archs)])
            srcc = gp_srcc(embeddings, y, args.labelled, args.splits)
            per_arch = summary.extract_s / args.num_archs
            shape = "x".join(map(str, settings.inputs().shape[1:]))
            print(f"| {name} | {settings.dataset} {shape} | {settings.batch_size} | C={build['C']} N={build['N']} | "
                  f"{per_arch:.3f} | {per_arch * NB201_CLASSES / 3600:.2f} | {summary.train_s:.0f} | "
                  f"{srcc[0]:.3f} ± {srcc[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
