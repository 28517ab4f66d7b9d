"""How well a GP on architecture embeddings ranks unseen architectures: fit on ``--labelled``
random NB201 classes, Spearman rank correlation (scipy) on all the others, over several
splits; side by side with the one-hot encoding of the space's own config.

    python bench/embedding_srcc.py --embeddings emb.parquet \
        --benchmark ../shared/benchmarks/nb201_all.parquet --dataset cifar10 --labelled 100 --splits 5
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import spearmanr

from predictors.embeddings import ArchEmbeddings
from predictors.gp import GPSurrogate
from raynas.benchmarks import TabularBenchmark


def srcc(embeddings: ArchEmbeddings, y: np.ndarray, labelled: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    train = rng.choice(len(y), size=labelled, replace=False)
    test = np.setdiff1d(np.arange(len(y)), train)
    mean, _ = GPSurrogate().fit(embeddings.vectors[train], y[train]).predict(embeddings.vectors[test])
    return float(spearmanr(mean, y[test]).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", required=True, help="ArchEmbeddings Parquet table (raynas embed --out)")
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--labelled", type=int, default=100)
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    learned = ArchEmbeddings.from_parquet(args.embeddings, "nb201")
    table = TabularBenchmark.from_parquet(args.benchmark, learned.space, args.dataset)
    archs = [a for a in learned.archs if a in table]
    learned = ArchEmbeddings(learned.space, archs, learned.vectors[learned.rows(archs)])
    y = np.array([table.query(a, args.split) for a in archs])
    rows = {"Jacobian embedding": learned, "one-hot config": ArchEmbeddings.one_hot(learned.space, archs)}
    print(f"GP (Matern-5/2) fitted on {args.labelled} labelled NB201 classes, SRCC with {args.dataset} "
          f"{args.split} accuracy on the other {len(archs) - args.labelled} (mean ± std over {args.splits} splits)\n")
    print("| encoding | dim | SRCC |\n| --- | --- | --- |")
    for name, embeddings in rows.items():
        values = [srcc(embeddings, y, args.labelled, seed) for seed in range(args.splits)]
        print(f"| {name} | {embeddings.dim} | {np.mean(values):.3f} ± {np.std(values):.3f} |")


if __name__ == "__main__":
    main()
