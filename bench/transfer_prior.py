"""A prior for an embedding search, from other spaces' labels only: the CG predictor fitted
on the NB101 and NB301 tables scores every architecture of an embedding table (the pool),
smoothed along the space's moves (:mod:`predictors.smoothing`: each score mixed with its
neighbours' in the pool; ``--smooth-steps 0`` keeps the raw scores), written as Parquet
(``arch``, ``score``, ``std``) for ``EmbeddingSearcher(prior=...)``.

    python bench/transfer_prior.py --pool emb.parquet --out prior.parquet --cache-dir graphs --save cg-nb101-nb301
    python bench/search_nb201.py --searchers embedding-gp,embedding-gp#prior --embeddings emb.parquet \
        --option "embedding-gp#prior:prior='prior.parquet'"

With ``--benchmark`` (a table of the pool's space) it also prints the prior's SRCC there; with
``--save DIR`` the fitted predictor is kept for ``predictor-rea`` (``--searcher-opt predictor=DIR``)
or ``embedding-gp`` (``--searcher-opt prior=DIR``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import torch
from scipy.stats import spearmanr

from predictors.cg import CGPredictor
from predictors.cg_data import GraphCache, GraphReader
from predictors.embeddings import ArchEmbeddings
from predictors.ensemble import EnsemblePredictor
from predictors.smoothing import ALPHA, STEPS, check_smoothing, smooth_over_moves
from raynas.benchmarks import TabularBenchmark
from raynas.io import write_parquet_atomic

SOURCES = (("nb101", "nb101_zc_naslib_subset.parquet"), ("darts", "nb301_zc_naslib_subset.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", help="embedding table (Parquet) whose architectures are scored")
    parser.add_argument("--out", help="the prior table to write (with --pool)")
    parser.add_argument("--benchmarks", default="../shared/benchmarks", help="folder with the NB101 and NB301 tables")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="keep traced graphs here between runs")
    parser.add_argument("--benchmark", default=None, help="a table of the pool's space, to report the prior's SRCC")
    parser.add_argument("--save", default=None, help="directory to save the fitted CG predictor to")
    parser.add_argument("--ensemble", type=int, default=1, help="a deep ensemble of this many members (seeds seed*N ..)")
    parser.add_argument("--smooth-steps", type=int, default=STEPS,
                        help="steps of smoothing the pool's scores along the space's moves (0: none)")
    parser.add_argument("--smooth-alpha", type=float, default=ALPHA, help="each step's weight on the neighbours' mean")
    args = parser.parse_args()
    try:
        check_smoothing(args.smooth_alpha, args.smooth_steps)
    except ValueError as error:
        parser.error(str(error))
    if bool(args.pool) != bool(args.out) or not (args.pool or args.save):
        parser.error("give --pool and --out (a prior table), --save DIR (the fitted predictor), or both")
    torch.set_num_threads(1)
    reader = GraphReader(cache=GraphCache(args.cache_dir, max_items=50_000))
    archs, labels = [], []
    for space, name in SOURCES:
        table = TabularBenchmark.from_parquet(Path(args.benchmarks) / name, space, args.dataset)
        archs += table.archs
        labels += list(table.column("valid"))
    start = time.perf_counter()
    def member(seed: int) -> CGPredictor:
        model = CGPredictor(seed=seed)
        model.reader = reader
        return model

    seeds = [args.seed * args.ensemble + k for k in range(args.ensemble)]
    predictor = EnsemblePredictor(member, seeds) if args.ensemble > 1 else member(args.seed)
    predictor.fit(archs, labels)
    print(f"fitted on {len(archs)} NB101 + NB301 archs in {time.perf_counter() - start:.0f} s")
    if args.save:
        print(f"predictor saved to {predictor.save(args.save)}")
    if not args.pool:
        return
    pool = ArchEmbeddings.from_parquet(args.pool)
    start = time.perf_counter()
    raw, std = predictor.predict(pool.archs)
    score = smooth_over_moves(raw, pool.archs, pool.space, args.smooth_alpha, args.smooth_steps)
    write_parquet_atomic(pa.table({"arch": [str(a) for a in pool.archs], "score": score, "std": std}), args.out)
    print(f"scored {len(pool)} {pool.space.name} archs in {time.perf_counter() - start:.0f} s, smoothed along the "
          f"space's moves (alpha {args.smooth_alpha}, {args.smooth_steps} steps) -> {args.out}")
    if args.benchmark:
        table = TabularBenchmark.from_parquet(args.benchmark, pool.space.name, args.dataset)
        known = [i for i, a in enumerate(pool.archs) if a in table]
        valid = [table.query(pool.archs[i], "valid") for i in known]
        print(f"SRCC of the prior with {args.dataset} valid accuracy on {len(known)} archs: "
              f"{spearmanr(score[known], valid)[0]:.3f} ({spearmanr(raw[known], valid)[0]:.3f} before smoothing)")


if __name__ == "__main__":
    main()
