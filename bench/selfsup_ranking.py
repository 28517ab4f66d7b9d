"""Label-free search on DARTS cells: how well does the contrastive loss rank architectures,
and what does a search on it cost and pick?

    python bench/selfsup_ranking.py                       # the closing-note run (defaults below)
    python bench/selfsup_ranking.py --num-archs 3 --seeds 0 --ssl-epochs 1 --sup-epochs 1 --C 4 --layers 2 \\
        --ssl-portion 0.1 --budget 2 --startup 1 --cache /tmp/ssl_smoke.json   # a smoke run, ~3 min on 2 cores

**Ranking.**  ``--num-archs`` distinct architectures of ``--space`` (default ``darts-csnas``,
the official CSNAS space; the space's uniform sampler, ``--seed``) are each, for every seed of
``--seeds`` (the training seed; the architectures stay the same)

* trained label-free (:class:`~raynas.trainables.SelfSupervisedTrainable`: ``--ssl-epochs``
  on ``--ssl-portion`` of the train images, two views each, ``--ssl-method``): the objective
  is the last epoch's ``ssl_loss``; its kNN probe ``knn_acc`` is recorded beside it;
* trained supervised stand-alone (:class:`~raynas.trainables.StandaloneTrainable`,
  ``--sup-epochs`` on all train images): ``val_acc`` and ``test_acc``, the truth;
* scored by every zero-cost proxy (:class:`~predictors.zero_cost.ZeroCostPredictor`, one
  digits batch, same network size), ``params`` among them.

Spearman's rho (scipy) of each signal against the supervised accuracies of the same seed,
every signal oriented so that larger means predicted better (``-ssl_loss``); the table gives
its mean and spread over the seeds.  The best zero-cost proxy is
chosen by its rho against ``val_acc``, i.e. with hindsight, which favours it.  The
trainings run as Ray tasks, one CPU each; results go to ``--cache`` (JSON) as they arrive, so
a run cut short continues where it stopped.

**Search.**  TPE over ``--space`` through :func:`raynas.experiment.run_search` (first seed):
label-free (``ssl_loss``, min, the label-free trainer without its kNN probe) for ``--budget``
trials, then supervised (``val_acc``, max) at equal wall time, enforced: the supervised search
runs under Tune's ``time_budget_s`` set to the label-free search's wall time (a trial the
budget stops keeps its last epoch).  Printed: wall time, labels read during the search, and the
supervised accuracy of each search's pick after retraining it with the supervised recipe
(``--retrain-epochs``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
from scipy.stats import spearmanr

from raynas.data import load_dataset
from raynas.experiment import SearchSettings, run_search
from search_spaces import get_space

SPACE = get_space("darts-csnas")  # replaced by --space in main()


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-archs", type=int, default=30, help="architectures to rank")
    p.add_argument("--ssl-epochs", type=int, default=10, help="label-free epochs (the published 10)")
    p.add_argument("--ssl-portion", type=float, default=0.5, help="fraction of the train images seen label-free")
    p.add_argument("--ssl-method", default="simclr", choices=("simclr", "nce", "pirl"))
    p.add_argument("--sup-epochs", type=int, default=10, help="supervised stand-alone epochs (the truth)")
    p.add_argument("--C", type=int, default=8, help="DARTS network width")
    p.add_argument("--layers", type=int, default=5, help="DARTS cells")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--budget", type=int, default=20, help="trials of each TPE search (0: skip the search part)")
    p.add_argument("--startup", type=int, default=8, help="TPE random start-up trials (num_initial)")
    p.add_argument("--cpus", type=int, default=2, help="Ray CPUs: concurrent trainings")
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture sample and of the searches")
    p.add_argument("--seeds", default="0,1,2", help="training seeds of the ranking (comma-separated)")
    p.add_argument("--space", default="darts-csnas", choices=("darts-csnas", "darts-edges", "darts"))
    p.add_argument("--retrain-epochs", type=int, help="supervised epochs of each pick's retraining (default --sup-epochs)")
    p.add_argument("--cache", default="selfsup_ranking.json", help="JSON file of finished evaluations")
    args = p.parse_args()
    if args.num_archs < 3 or min(args.ssl_epochs, args.sup_epochs, args.C, args.layers, args.cpus) < 1:
        p.error("--num-archs must be >= 3; epochs, --C, --layers and --cpus >= 1")
    if not 0 <= args.startup <= max(args.budget, 0):
        p.error(f"--startup must be in [0, --budget], got {args.startup}")
    return args


def recipes(args: argparse.Namespace, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trainer keys of the label-free and the supervised evaluation (training seed ``seed``)."""
    seed = args.seed if seed is None else seed
    shared = {"dataset": args.dataset, "seed": seed, "build": {"C": args.C, "layers": args.layers}}
    ssl = {**shared, "epochs": args.ssl_epochs, "data_portion": args.ssl_portion, "ssl_method": args.ssl_method,
           "knn_probe": True}  # fmt: skip
    return ssl, {**shared, "epochs": args.sup_epochs}


@ray.remote(num_cpus=1)
def evaluate(kind: str, arch_text: str, recipe: dict[str, Any], space_name: str) -> dict[str, Any]:
    """Train one architecture with one recipe; the last epoch's metrics and the time taken."""
    from raynas.trainables import SelfSupervisedTrainable, StandaloneTrainable

    cls = SelfSupervisedTrainable if kind == "ssl" else StandaloneTrainable
    space = get_space(space_name)
    start = time.perf_counter()
    trainable = cls(config={**space.encode(space.parse(arch_text)), "space": space.name, **recipe})
    for _ in range(recipe["epochs"]):
        result = trainable.train()
    trainable.stop()
    keep = ("ssl_loss", "knn_acc") if kind == "ssl" else ("val_acc", "test_acc")
    return {**{k: result[k] for k in keep}, "params": result["params"], "train_s": time.perf_counter() - start}


class Cache:
    """Evaluations by ``kind|recipe|arch``, written after each one."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    @staticmethod
    def key(kind: str, arch: str, recipe: dict[str, Any]) -> str:
        return f"{SPACE.name}|{kind}|{json.dumps(recipe, sort_keys=True)}|{arch}"

    def fill(self, jobs: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Run the jobs not cached yet as Ray tasks, saving each result as it arrives."""
        todo = {}
        for kind, arch, recipe in jobs:
            key = self.key(kind, arch, recipe)
            if key not in self.data and key not in todo.values():
                todo[evaluate.remote(kind, arch, recipe, SPACE.name)] = key
        pending = list(todo)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            self.data[todo[done[0]]] = ray.get(done[0])
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            tmp.replace(self.path)
            print(f"  {len(todo) - len(pending)}/{len(todo)} trainings done", flush=True)

    def get(self, kind: str, arch: str, recipe: dict[str, Any]) -> dict[str, Any]:
        return self.data[self.key(kind, arch, recipe)]


def proxy_scores(archs: list[str], args: argparse.Namespace, seed: int) -> dict[str, np.ndarray]:
    """Every zero-cost proxy of every architecture, at the evaluated network size."""
    from predictors.zero_cost import PROXIES, ZeroCostPredictor

    build = {"C": args.C, "layers": args.layers}
    return {
        proxy: ZeroCostPredictor(proxy, SPACE, args.dataset, seed=seed, build=build).predict(archs)[0]
        for proxy in PROXIES
    }


def rho(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def ranking(args: argparse.Namespace, cache: Cache) -> None:
    """The ranking tables and the mean training time of each recipe."""
    seeds = [int(s) for s in args.seeds.split(",")]
    archs = [str(a) for a in SPACE.sample_unique(args.num_archs, args.seed)]
    print(f"ranking: {len(archs)} {SPACE.name} architectures x {len(seeds)} seeds, "
          f"{2 * len(archs) * len(seeds)} trainings", flush=True)  # fmt: skip
    jobs = [(kind, a, recipe) for seed in seeds for a in archs for kind, recipe in zip(("ssl", "sup"), recipes(args, seed))]
    cache.fill(jobs)
    rhos: dict[str, list[tuple[float, float]]] = {}
    labels: dict[str, str] = {}
    times: list[tuple[float, float]] = []
    best_counts: dict[str, int] = {}
    for seed in seeds:
        ssl, sup = recipes(args, seed)
        label_free = [cache.get("ssl", a, ssl) for a in archs]
        truth = [cache.get("sup", a, sup) for a in archs]
        val, test = np.array([t["val_acc"] for t in truth]), np.array([t["test_acc"] for t in truth])
        signals = {
            "-ssl_loss (label-free objective)": (-np.array([r["ssl_loss"] for r in label_free]), "none"),
            "knn_acc (kNN probe of the label-free net)": (np.array([r["knn_acc"] for r in label_free]), "train + valid, probe only"),
        }  # fmt: skip
        proxies = proxy_scores(archs, args, seed)
        for name, scores in proxies.items():
            signals[name] = (scores, "one batch" if name in {"snip", "grad_norm", "fisher"} else "none")
        best = max((p for p in proxies if p != "params"), key=lambda p: np.nan_to_num(rho(proxies[p], val)[0], nan=-2))
        best_counts[best] = best_counts.get(best, 0) + 1
        for name, (scores, reads) in signals.items():
            rhos.setdefault(name, []).append((rho(scores, val)[0], rho(scores, test)[0]))
            labels[name] = reads
        times.append((np.mean([r["train_s"] for r in label_free]), np.mean([t["train_s"] for t in truth])))
        accs = (val.min(), val.max(), test.min(), test.max())
        print(f"seed {seed}: supervised val_acc {accs[0]:.1f}-{accs[1]:.1f} %, test_acc {accs[2]:.1f}-{accs[3]:.1f} %")

    print(f"\n## Spearman rho vs supervised accuracy ({len(archs)} {SPACE.name} archs, seeds {seeds}, {args.dataset}, "
          f"C={args.C}, {args.layers} cells; label-free {args.ssl_method} {args.ssl_epochs} ep on {args.ssl_portion:.0%} "
          f"of train images; supervised {args.sup_epochs} ep)\n")  # fmt: skip
    print("| signal | labels it reads | rho vs val_acc (mean ± sd over seeds) | rho vs test_acc (mean ± sd) |")
    print("| --- | --- | ---: | ---: |")
    for name, values in rhos.items():
        arr = np.array(values, dtype=float)
        mark = f" (best zero-cost proxy in {best_counts[name]}/{len(seeds)} seeds)" if name in best_counts else ""
        cells = [f"{np.nanmean(arr[:, c]):+.3f} ± {np.nanstd(arr[:, c]):.3f}" for c in (0, 1)]
        print(f"| {name}{mark} | {labels[name]} | {cells[0]} | {cells[1]} |")
    ssl_s, sup_s = np.mean(times, axis=0)
    print(f"\nmean training time per architecture: label-free {ssl_s:.1f} s, supervised {sup_s:.1f} s")


def timed_search(
    args: argparse.Namespace, folder: str, trainable: str, recipe: dict[str, Any], budget: int, seconds: float | None = None
) -> tuple[Any, float]:
    trainer = {k: v for k, v in recipe.items() if k not in ("epochs", "dataset", "seed")}
    start = time.perf_counter()
    outcome = run_search(SearchSettings(
        space=SPACE.name, searcher="tpe", trainable=trainable, dataset=args.dataset,
        num_samples=budget, max_concurrent=args.cpus, epochs=recipe["epochs"], seed=args.seed, time_budget_s=seconds,
        storage=folder, name=trainable, trainer_options=trainer,
        searcher_options={"num_initial": min(args.startup, budget)},
    ))  # fmt: skip
    return outcome, time.perf_counter() - start


def search(args: argparse.Namespace, cache: Cache) -> None:
    """Label-free TPE for ``--budget`` trials, then supervised TPE for the same wall time."""
    ssl, sup = recipes(args)
    retrain = {**sup, "epochs": args.retrain_epochs or args.sup_epochs}
    data = load_dataset(args.dataset)
    rows: list[tuple[str, str, Any, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        no_probe = {k: v for k, v in ssl.items() if k != "knn_probe"}  # the probe reads labels
        outcome, label_free_s = timed_search(args, folder, "selfsup", no_probe, args.budget)
        rows.append(("label-free (ssl_loss, min)", "0", outcome, label_free_s))
        outcome, wall = timed_search(args, folder, "standalone", sup, 10 * args.budget, seconds=label_free_s)
        rows.append(("supervised (val_acc, max)", f"{data.size('train') + data.size('valid')} (train + valid)", outcome, wall))
    picks = [str(SPACE.parse(outcome.best_arch)) for _, _, outcome, _ in rows]
    cache.fill([("sup", arch, retrain) for arch in picks])
    print(f"\n## TPE over {SPACE.name} at equal wall time ({args.budget} label-free trials; the supervised search "
          f"under a time budget of the label-free one's {rows[0][3]:.0f} s), {args.startup} random start-up, "
          f"{args.cpus} concurrent, {args.dataset}; picks retrained {retrain['epochs']} ep\n")  # fmt: skip
    print("| search | labels read | wall time (s) | trials | pick's retrained val_acc | pick's test_acc | pick |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for (label, labels, outcome, wall), arch in zip(rows, picks):
        truth = cache.get("sup", arch, retrain)
        print(f"| {label} | {labels} | {wall:.0f} | {outcome.num_trials} | {truth['val_acc']:.2f} | "
              f"{truth['test_acc']:.2f} | `{arch}` |")  # fmt: skip


def main() -> None:
    global SPACE
    args = options()
    SPACE = get_space(args.space)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    cache = Cache(args.cache)
    start = time.perf_counter()
    ranking(args, cache)
    if args.budget > 0:
        search(args, cache)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
