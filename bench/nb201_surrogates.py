"""Which surrogate picks the next NB201 cell best from a few labels: the question behind
``embedding-gp``'s slow climb.  Each surrogate is fitted on the rank-warped valid accuracies of
``n`` random cells of the one-hot pool (what ``embedding-gp`` fits before its first local
step), then scored three ways: SRCC with valid accuracy over all classes, SRCC over the best
20% (where a search spends its queries), and the regret of its pick among the untried
neighbours of the best labelled cell (the true best neighbour's valid accuracy minus that of
the one the surrogate ranks first: what ``local=1`` asks of it at every step).

    python bench/nb201_surrogates.py --table cifar10=../shared/benchmarks/nb201_all.parquet \\
        --table imagenet16=../shared/benchmarks/nb201_imagenet16.parquet
"""
from __future__ import annotations

import argparse
import itertools
import warnings
from typing import Callable

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.linear_model import BayesianRidge

from nb201_landscape import add_table_option, neighbours, read_tables
from predictors.gp import GPSurrogate, warped
from predictors.smoothing import move_graph
from raynas.benchmarks import TabularBenchmark
from searchers.embedding import load_embeddings

Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (X train, y, X query) -> scores


def pairwise_features(one_hot: np.ndarray, edges: int) -> np.ndarray:
    """One-hot codes plus every product of two edges' codes: a linear model on these is the
    additive-plus-pairwise categorical kernel."""
    codes = one_hot.reshape(len(one_hot), edges, -1)
    pairs = [np.einsum("ni,nj->nij", codes[:, a], codes[:, b]).reshape(len(one_hot), -1) for a, b in itertools.combinations(range(edges), 2)]
    return np.concatenate([one_hot, *pairs], axis=1)


def surrogates(one_hot: np.ndarray, edges: int) -> dict[str, tuple[Fit, np.ndarray]]:
    gp = lambda ard: lambda X, y, Q: GPSurrogate(ard=ard).fit(X, y).predict(Q)[0]  # noqa: E731
    ridge: Fit = lambda X, y, Q: BayesianRidge().fit(X, y).predict(Q)  # noqa: E731
    pairs = pairwise_features(one_hot, edges)
    return {
        "GP, Matern-5/2, one length-scale (embedding-gp)": (gp(False), one_hot),
        "GP, Matern-5/2, ARD": (gp(True), one_hot),
        "GP on one-hot + pairwise codes": (gp(False), pairs),
        "Bayesian ridge, additive (one-hot)": (ridge, one_hot),
        "Bayesian ridge, additive + pairwise": (ridge, pairs),
    }


def compare(name: str, table: TabularBenchmark, counts: list[int], reps: int) -> None:
    pool = load_embeddings("one-hot", table.space)
    one_hot = pool.vectors.astype(np.float64)
    valid = np.array([table.query(a, "valid") for a in pool.archs])
    moves = move_graph(pool.archs, table.space)
    good = valid > np.quantile(valid, 0.8)
    models = surrogates(one_hot, one_hot.shape[1] // len(table.space.ops))
    print(f"\n## {name}: {len(valid)} classes, {reps} draws of n random labelled cells\n")
    print("| surrogate | n | SRCC, all | SRCC, best 20% | neighbour-pick regret (valid) | failed GP fits |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in counts:
        scores = {label: [] for label in models}
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            train = rng.choice(len(valid), n, replace=False)
            y = warped(valid[train], "rank")
            best = train[np.argmax(valid[train])]
            near = neighbours(moves, best)
            near = near[~np.isin(near, train)]
            for label, (fit, features) in models.items():
                with warnings.catch_warnings(record=True) as caught:  # a failed fit warns; counted, not printed
                    warnings.simplefilter("always")
                    torch.manual_seed(rep)  # BoTorch's retries after a failed fit draw their starts from torch
                    predicted = fit(features[train], y, features)
                failed = any("fit failed" in str(w.message) for w in caught)
                regret = valid[near].max() - valid[near[np.argmax(predicted[near])]]
                scores[label].append(
                    (spearmanr(predicted, valid).statistic, spearmanr(predicted[good], valid[good]).statistic, regret, failed)
                )
        for label, rows in scores.items():
            mean = np.mean(rows, axis=0)
            failed = sum(row[3] for row in rows)
            print(f"| {label} | {n} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.2f} | {failed} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_option(parser)
    parser.add_argument("--labels", default="20,40", help="labelled random cells n")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    for dataset, table in read_tables(parser, args.table):
        compare(f"NB201 {dataset}", table, [int(n) for n in args.labels.split(",")], args.reps)


if __name__ == "__main__":
    main()
