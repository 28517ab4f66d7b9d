"""Searchers against the NB201 table, NASLib style: valid accuracy guides the search, the
test accuracy of the best-by-valid architecture is reported after 50 / 100 / 150 queries, with
the best valid accuracy found (what the searcher optimises); ``--plot`` draws both curves.

    python bench/search_nb201.py --benchmark ../shared/benchmarks/nb201_all.parquet \
        --dataset cifar10 --searchers random,rea,tpe,nevergrad,ax --budget 150 --seeds 100 \
        --seeds-for ax=10
    python bench/search_nb201.py --searchers predictor-rea,predictor-rea#m50,rea --budget 100 \
        --seeds 20 --report 50,100 --option predictor-rea:num_candidates=20 \
        --option predictor-rea#m50:num_candidates=50
    python bench/search_nb201.py --searchers embedding-gp,embedding-gp#local --budget 100 \
        --report 25,50,100 --embeddings emb.parquet --option "embedding-gp#local:prior='prior.parquet'" \
        --option embedding-gp#local:local=1

A ``#label`` suffix names a variant of a searcher so one run can compare option settings.

Each (searcher, seed) run is a Ray task; the table goes into the object store once.
"""
from __future__ import annotations

import argparse
import ast
import time

import numpy as np
import ray

from raynas.benchmarks import TabularBenchmark
from searchers import FINISHED, make_searcher


def search_once(
    name: str, seed: int, budget: int, table: TabularBenchmark, options: dict, embeddings: object = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """The best valid accuracy found and the test accuracy of that architecture after each
    query, and the seconds taken."""
    import torch

    torch.set_num_threads(1)
    if name.startswith("embedding-"):
        options = {**options, "embeddings": embeddings}
    searcher = make_searcher(name, table.space, "val_acc", "max", seed, **options)
    best_valid, best_test = -np.inf, np.nan
    valids, trajectory = np.full(budget, np.nan), np.full(budget, np.nan)
    start = time.perf_counter()
    for i in range(budget):
        config = searcher.suggest(str(i))
        if config is None or config == FINISHED:
            break
        arch = table.space.decode(config)
        valid = table.query(arch, "valid")
        searcher.on_trial_complete(str(i), {"val_acc": valid})
        if valid > best_valid:
            best_valid, best_test = valid, table.query(arch, "test")
        valids[i], trajectory[i] = best_valid, best_test
    return valids, trajectory, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--searchers", default="random,rea,tpe,nevergrad")
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed, first-seed + 1, ...")
    parser.add_argument("--seeds-for", action="append", default=[], metavar="NAME=N", help="fewer seeds for slow searchers")
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME:KEY=VALUE", help="a searcher option (a Python literal)"
    )
    parser.add_argument("--report", default="50,100,150", help="query counts to report")
    parser.add_argument(
        "--embeddings", default="one-hot", help="embedding table (Parquet) for embedding-* searchers, or one-hot"
    )
    parser.add_argument("--plot", help="a PNG of the mean curves (test of best-by-valid, best valid found)")
    args = parser.parse_args()

    seeds_for = {k: int(v) for k, v in (item.split("=") for item in args.seeds_for)}
    extra: dict[str, dict] = {}
    for item in args.option:
        name, _, setting = item.partition(":")
        key, _, value = setting.partition("=")
        extra.setdefault(name, {})[key] = ast.literal_eval(value)
    report = [int(r) for r in args.report.split(",") if int(r) <= args.budget]
    table = TabularBenchmark.from_parquet(args.benchmark, "nb201", args.dataset)
    ray.init(include_dashboard=False, log_to_driver=False)
    table_ref = ray.put(table)
    names = args.searchers.split(",")
    embeddings_ref = None
    if any(n.startswith("embedding-") for n in names):
        from searchers.embedding import load_embeddings

        embeddings_ref = ray.put(load_embeddings(args.embeddings, table.space))
    task = ray.remote(num_cpus=1)(search_once)
    pending = {}
    for name in names:
        options = {"budget": args.budget, **extra.get(name, {})}  # make_searcher hands budget to the searchers that use one
        for seed in range(args.first_seed, args.first_seed + seeds_for.get(name, args.seeds)):
            searcher = name.partition("#")[0]
            pending[task.remote(searcher, seed, args.budget, table_ref, options, embeddings_ref)] = name
    results: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {n: [] for n in names}
    for ref, name in pending.items():
        results[name].append(ray.get(ref))

    optimum = float(np.max(table.column("test")))
    print(f"NB201 {args.dataset}: test accuracy of the best-by-valid architecture (mean ± std over seeds); optimum {optimum:.2f}")
    print(f"embedding-* searchers use: {args.embeddings}")
    print("".join(f"{name} options: {options}\n" for name, options in extra.items()))
    print("| searcher | seeds | " + " | ".join(f"{q} queries" for q in report) + " | best valid found | s / run |")
    print("| --- | --- | " + " | ".join("---" for _ in report) + " | --- | --- |")
    for name in names:
        valids, tests = (np.stack([run[part] for run in results[name]]) for part in (0, 1))
        cells = [f"{np.nanmean(tests[:, q - 1]):.2f} ± {np.nanstd(tests[:, q - 1]):.2f}" for q in report]
        found = " / ".join(f"{np.nanmean(valids[:, q - 1]):.2f}" for q in report)
        seconds = np.mean([run[2] for run in results[name]])
        print(f"| {name} | {len(tests)} | " + " | ".join(cells) + f" | {found} ± {np.nanstd(valids[:, -1]):.2f} | {seconds:.1f} |")
    if args.plot:
        plot_curves(results, args.plot, f"NB201 {args.dataset}")
        print(f"curves: {args.plot}")


def plot_curves(results: dict[str, list[tuple[np.ndarray, np.ndarray, float]]], path: str, title: str) -> None:
    """Mean over seeds (band: standard error) of the test accuracy of the best-by-valid
    architecture and of the best valid accuracy found, against the queries made; the y axis
    starts at the lowest mean after 10 queries, where the curves separate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, part, label in zip(axes, (1, 0), ("test accuracy of the best-by-valid", "best valid accuracy found")):
        lowest = np.inf
        for name, runs in results.items():
            curves = np.stack([run[part] for run in runs])
            mean, error = np.nanmean(curves, axis=0), np.nanstd(curves, axis=0) / np.sqrt(len(curves))
            queries = np.arange(1, len(mean) + 1)
            axis.plot(queries, mean, label=f"{name} ({len(curves)} seeds)")
            axis.fill_between(queries, mean - error, mean + error, alpha=0.2)
            lowest = min(lowest, mean[min(9, len(mean) - 1)])
        axis.set(xlabel="queries", ylabel=label, ylim=(lowest, None))
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
