"""Do Jacobian embeddings transfer across search spaces?  One encoder, several spaces.

One SetEncoder is trained (NT-Xent, no labels) on the Jacobian features of NB201 archs (a
sample of ``nb201_all``) and of the archs of the NASLib NB101 / NB301 tables, all taken on one
digits batch with one projection basis.  Then a GP (:class:`predictors.gp.GPSurrogate`) is
fitted on the labelled embeddings of a source space and ranks the NB201 sample: the Spearman
rank correlation (SRCC) with NB201's CIFAR-10 valid accuracy measures transfer.  For scale,
the same GP on 100 labelled NB201 archs ranks the rest of the sample (within space), next to a
one-hot GP (the space's own encoding), a log-params GP (the tables' parameter counts) and raw
params (no fit).  Transfer rows are also given on per-space standardised inputs (each
space's embeddings z-scored on its own architectures: needs no label of the target), and for a
ridge fit on embeddings plus log-params.  A label-free row, how close each NB201 embedding lies
to the source space's centre, shows what a GP fitted far from its data ranks by: its distance to
the data, whatever the labels.  Accuracy labels are the tables' own (200-epoch NB201, 108-epoch NB101,
NB301 surrogate values); by default the Jacobians come from reduced networks on 8x8 digits.

    python bench/embed_transfer.py --spaces nb201,nb101,darts --nb201 1000 --darts 300 \
        --batch-size 64 --epochs 30 --workdir /tmp/raynas-embed-transfer
    python bench/embed_transfer.py --spaces nb201,darts --dataset synthetic:512 --batch-size 256 \
        --proj 128 --build '{"nb201": {"C": 16, "N": 2}, "darts": {"C": 16, "layers": 3}}'

Features are kept in ``--workdir`` and reused by a rerun with the same settings.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import ray
import torch
from scipy.stats import spearmanr

from predictors.embed_pipeline import FeatureSettings, build_embeddings
from predictors.embeddings import ArchEmbeddings
from predictors.gp import GPSurrogate
from raynas.benchmarks import TabularBenchmark

TABLES = {
    "nb201": "nb201_all.parquet",
    "nb101": "nb101_zc_naslib_subset.parquet",
    "darts": "nb301_zc_naslib_subset.parquet",
}
BUILDS = {
    "nb201": {"C": 8, "N": 1},
    "nb101": {"stem_channels": 16, "num_stacks": 1, "num_modules_per_stack": 1},
    "darts": {"C": 8, "layers": 3},
}


def sample(table: TabularBenchmark, n: int, seed: int) -> list:
    """``n`` table rows (all when ``n`` is 0 or larger than the table), distinct architectures."""
    archs = list(dict.fromkeys(table.space.canonical(a) for a in table.archs))
    if 0 < n < len(archs):
        archs = [archs[i] for i in np.sort(np.random.default_rng(seed).choice(len(archs), n, replace=False))]
    return archs


def srcc(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    mean, _ = GPSurrogate(max_train=None).fit(train_x, train_y).predict(test_x)
    return float(spearmanr(mean, test_y).statistic)


def standardise(x: np.ndarray) -> np.ndarray:
    """Per-space z-scores: one space's embeddings sit far from another's (the encoder separates
    spaces), so a model fitted on one extrapolates to the other's region; centred and scaled per
    space, the directions that order each space line up."""
    return (x - x.mean(0)) / (x.std(0) + 1e-12)


def ridge_srcc(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, alpha: float = 1.0) -> float:
    """A linear fit transfers a direction, where a stationary GP far from its data reverts to the mean."""
    a = np.c_[train_x, np.ones(len(train_x))]
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ train_y)
    return float(spearmanr(np.c_[test_x, np.ones(len(test_x))] @ w, test_y).statistic)


def within(x: np.ndarray, y: np.ndarray, labelled: int, repeats: int) -> tuple[float, float]:
    """Mean and std of SRCC over ``repeats`` random splits: ``labelled`` to fit, the rest to rank."""
    scores = []
    for r in range(repeats):
        order = np.random.default_rng(r).permutation(len(y))
        fit, rest = order[:labelled], order[labelled:]
        scores.append(srcc(x[fit], y[fit], x[rest], y[rest]))
    return float(np.mean(scores)), float(np.std(scores))


def table_rows(
    emb: dict[str, np.ndarray], logp: dict[str, np.ndarray], one_hot: np.ndarray, y: dict[str, np.ndarray],
    labelled: int, repeats: int,
) -> list[tuple[str, str, str, str]]:
    """(predictor, fit -> rank, sizes, SRCC) rows: transfer to NB201, within each space, baselines."""
    rows, target = [], "nb201"
    z_emb, z_logp = ({s: standardise(v) for s, v in x.items()} for x in (emb, logp))
    both = {s: np.c_[z_emb[s], z_logp[s]] for s in emb}
    for source in [s for s in emb if s != target]:
        sizes = f"{len(y[source])} -> {len(y[target])}"
        for name, x, fit in (("Jacobian embedding GP", emb, srcc), ("log-params GP", logp, srcc),
                             ("Jacobian embedding GP, per-space standardised", z_emb, srcc),
                             ("log-params, per-space standardised", z_logp, srcc),
                             ("embedding + log-params ridge, per-space standardised", both, ridge_srcc)):  # fmt: skip
            score = fit(x[source], y[source], x[target], y[target])
            rows.append((name, f"{source} -> {target}", sizes, f"{score:.3f}"))
        closeness = -np.linalg.norm(emb[target] - emb[source].mean(0), axis=1)
        score = spearmanr(closeness, y[target]).statistic
        rows.append(("closeness to the source's embedding centre (no labels)", f"{source} -> {target}", sizes, f"{score:.3f}"))
    within_rows = [("Jacobian embedding GP", s, emb[s]) for s in emb]
    within_rows += [("one-hot GP", target, one_hot), ("log-params GP", target, logp[target])]
    for name, space, x in within_rows:
        mean, std = within(x, y[space], labelled, repeats)
        sizes = f"{labelled} -> {len(y[space]) - labelled}"
        rows.append((name, f"{space} -> {space}", sizes, f"{mean:.3f} ± {std:.3f}"))
    for space in emb:
        score = spearmanr(logp[space][:, 0], y[space]).statistic
        rows.append(("params (no fit)", space, f"- -> {len(y[space])}", f"{score:.3f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", default=str(Path(__file__).resolve().parents[2] / "shared" / "benchmarks"))
    parser.add_argument("--spaces", default="nb201,nb101,darts", help="nb201 (the target) plus source spaces")
    parser.add_argument("--nb201", type=int, default=1000, help="NB201 archs sampled from the table")
    parser.add_argument("--nb101", type=int, default=0, help="NB101 archs (0: all distinct ones of the table)")
    parser.add_argument("--darts", type=int, default=300, help="NB301 archs (0: all of the table)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--inits", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64, help="B images")
    parser.add_argument("--proj", type=int, default=64, help="P directions (digits: 64 = all pixels)")
    parser.add_argument("--build", default=json.dumps(BUILDS), help="space.build options per space (JSON)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--labelled", type=int, default=100, help="labelled archs of the within-space GP")
    parser.add_argument("--repeats", type=int, default=5, help="random splits of the within-space GP")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs for feature extraction")
    parser.add_argument("--workdir", default="/tmp/raynas-embed-transfer")
    args = parser.parse_args()
    torch.set_num_threads(1)

    spaces = [s.strip() for s in args.spaces.split(",")]
    if spaces[0] != "nb201" or len(spaces) < 2 or not set(spaces) <= set(TABLES):
        raise SystemExit(f"--spaces must be nb201 followed by sources from {sorted(TABLES)[:-1]}, got {args.spaces!r}")
    folder = Path(args.benchmarks)
    tables = {s: TabularBenchmark.from_parquet(folder / TABLES[s], s, "cifar10") for s in spaces}
    sizes = {"nb201": args.nb201, "nb101": args.nb101, "darts": args.darts}
    archs = {s: sample(tables[s], sizes[s], args.seed) for s in spaces}

    settings = FeatureSettings(args.dataset, args.inits, args.batch_size, args.proj, args.seed)
    train = {"epochs": args.epochs, "batch_size": args.train_batch, "lr": args.lr, "seed": args.seed}
    out = Path(args.workdir) / f"embeddings-{'-'.join(spaces)}.parquet"
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    summary = build_embeddings(
        spaces, out, settings, archs=archs, features_root=Path(args.workdir) / "features",
        train=True, train_options=train, builds=json.loads(args.build),
    )  # fmt: skip
    ray.shutdown()
    elapsed = time.perf_counter() - start

    emb = {s: ArchEmbeddings.from_parquet(out, s) for s in spaces}
    y = {s: np.array([tables[s].query(a) for a in emb[s].archs]) for s in spaces}
    logp = {s: np.log(np.array([tables[s].info(a)["params"] for a in emb[s].archs]))[:, None] for s in spaces}
    one_hot = ArchEmbeddings.one_hot(emb["nb201"].space, emb["nb201"].archs).vectors
    rows = table_rows({s: e.vectors for s, e in emb.items()}, logp, one_hot, y, args.labelled, args.repeats)

    counts = ", ".join(f"{s} {summary.counts[s]}" for s in spaces)
    print(f"archs: {counts}; K={args.inits} B={args.batch_size} P={args.proj} on {args.dataset}; builds {args.build}")
    print(f"encoder: {args.epochs} epochs, loss {summary.loss_history[0]:.3f} -> {summary.loss_history[-1]:.3f}; "
          f"features {summary.extract_s:.0f} s, training {summary.train_s:.0f} s, total {elapsed:.0f} s\n")  # fmt: skip
    print("| predictor | fit -> rank | archs (fit -> ranked) | SRCC vs table accuracy |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
