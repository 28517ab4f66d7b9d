"""How well a GP on architecture embeddings ranks unseen architectures: fit on ``--labelled``
random NB201 classes, Spearman rank correlation (scipy) on all the others, over several
splits; side by side with the one-hot encoding of the space's own config.  Several tables
(``--embeddings NAME=PATH``, repeated) are compared on the architectures they all hold.

    python bench/embedding_srcc.py --embeddings emb.parquet \
        --benchmark ../shared/benchmarks/nb201_all.parquet --dataset cifar10 --labelled 100 --splits 5
    python bench/embedding_srcc.py --embeddings raynas=emb.parquet --embeddings paper=paper.parquet
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
    parser.add_argument("--embeddings", required=True, action="append",
                        help="ArchEmbeddings Parquet table (raynas embed --out), or NAME=PATH; repeat to compare")
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--labelled", type=int, default=100)
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    named = dict(item.split("=", 1) if "=" in item else ("Jacobian embedding", item) for item in args.embeddings)
    tables = {name: ArchEmbeddings.from_parquet(path, "nb201") for name, path in named.items()}
    space = next(iter(tables.values())).space
    table = TabularBenchmark.from_parquet(args.benchmark, space, args.dataset)
    common = set.intersection(*({a.key for a in t.archs} for t in tables.values()))
    archs = [a for a in next(iter(tables.values())).archs if a.key in common and a in table]
    rows = {name: ArchEmbeddings(space, archs, t.vectors[t.rows(archs)]) for name, t in tables.items()}
    rows["one-hot config"] = ArchEmbeddings.one_hot(space, archs)
    y = np.array([table.query(a, args.split) for a in archs])
    print(f"GP (Matern-5/2) fitted on {args.labelled} labelled NB201 classes, SRCC with {args.dataset} "
          f"{args.split} accuracy on the other {len(archs) - args.labelled} (mean ± std over {args.splits} splits)\n")
    print("| encoding | dim | SRCC |\n| --- | --- | --- |")
    for name, embeddings in rows.items():
        values = [srcc(embeddings, y, args.labelled, seed) for seed in range(args.splits)]
        print(f"| {name} | {embeddings.dim} | {np.mean(values):.3f} ± {np.std(values):.3f} |")

if __name__ == "__main__":
    main()
