"""Searchers on the DARTS / NAS-Bench-301 space, scored by YAHPO Gym's NB301 surrogate.

NB301 has no table of every cell, so ``bench/search_nb201.py``'s table look-up is replaced by
the surrogate (:class:`raynas.nb301_surrogate.NB301Surrogate`, valid accuracy after 98 epochs):
the same search loop, one Ray task per (searcher, seed), and the best accuracy found after
each query.  The surrogate has one accuracy, so there is no test-of-best-by-valid column.

    python bench/search_nb301.py --surrogate ../shared/benchmarks/yahpo_nb301_v2 \
        --searchers random,rea,tpe,nevergrad --budget 100 --seeds 30 --report 25,50,100
"""
from __future__ import annotations

import argparse

import numpy as np
import ray

from raynas.nb301_surrogate import NB301Surrogate
from search_nb201 import search_once


class SurrogateTable:
    """The look-ups ``search_once`` makes (``space``, ``query``), answered by the surrogate."""

    def __init__(self, folder: str):
        self.surrogate = NB301Surrogate(folder)
        self.space = self.surrogate.space

    def query(self, arch, split: str) -> float:
        return float(self.surrogate.predict([arch])[0])


@ray.remote(num_cpus=1)
def search_task(name: str, seed: int, budget: int, folder: str) -> tuple[np.ndarray, np.ndarray, float]:
    return search_once(name, seed, budget, SurrogateTable(folder), {"budget": budget})  # for the searchers that use one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", default="../shared/benchmarks/yahpo_nb301_v2", help="YAHPO Gym's nb301 folder")
    parser.add_argument("--searchers", default="random,rea,tpe,nevergrad")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--report", default="25,50,100", help="query counts to report")
    args = parser.parse_args()

    NB301Surrogate(args.surrogate)  # a wrong folder fails here, before Ray starts
    report = [int(r) for r in args.report.split(",") if int(r) <= args.budget]
    names = args.searchers.split(",")
    ray.init(include_dashboard=False, log_to_driver=False)
    pending = {search_task.remote(n, seed, args.budget, args.surrogate): n for n in names for seed in range(args.seeds)}
    results: dict[str, list] = {n: [] for n in names}
    for ref, name in pending.items():
        results[name].append(ray.get(ref))

    print("DARTS / NB301 (YAHPO Gym surrogate, valid accuracy after 98 epochs): best found (mean ± std over seeds)\n")
    print("| searcher | seeds | " + " | ".join(f"{q} queries" for q in report) + " | s / run |")
    print("| --- | --- | " + " | ".join("---" for _ in report) + " | --- |")
    for name in names:
        found = np.stack([run[0] for run in results[name]])
        cells = [f"{np.nanmean(found[:, q - 1]):.2f} ± {np.nanstd(found[:, q - 1]):.2f}" for q in report]
        seconds = np.mean([run[2] for run in results[name]])
        print(f"| {name} | {len(found)} | " + " | ".join(cells) + f" | {seconds:.1f} |")


if __name__ == "__main__":
    main()
