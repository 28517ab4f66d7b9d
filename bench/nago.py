"""NAGO generators on digits: multi-objective BO vs random search, NAGO vs NB201, ASHA, BO step time.

Every search goes through ``raynas.experiment.run_search`` (the code ``raynas search``
runs: Ray Tune, StandaloneTrainable, one trial at a time) and leaves its ``trials.parquet``
under ``--out``; ``report`` prints every table from those files.  Parts, each its own run:

    python bench/nago.py mo --searcher ax       # val_acc max / params min, fixed width
    python bench/nago.py mo --searcher random   # same budget, front from the trials table
    python bench/nago.py single --space nago    # val_acc only, width from a parameter budget
    python bench/nago.py single --space nb201   # same searcher, trainer and number of trials
    python bench/nago.py asha                   # multi-objective Ax under ASHA (epochs as resource)
    python bench/nago.py bostep                 # Ax suggest time at 50 / 200 synthetic observations
    python bench/nago.py compare --searchers bohb ax random tpe --seeds 0 1 --dataset digits --epochs 4
                                                # val_acc / params hypervolume over seeds, per searcher
    python bench/nago.py steps --searchers bohb ax random tpe   # seconds per BO step, every searcher
    python bench/nago.py report

Hypervolume (:func:`raynas.results.hypervolume`) is in (val_acc %, params) with the
reference point (10 % = chance on 10 classes, parameters of the largest generator, all
levels at 10 nodes, at the same width), so every network of the space is inside it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from raynas.data import load_dataset
from raynas.experiment import SearchSettings, run_search
from raynas.io import write_parquet_atomic
from raynas.results import hypervolume, pareto_table, trials_table
from raynas.trainables import StandaloneTrainable
from search_spaces import get_space
from search_spaces.nago import SIZE_OBJECTIVE_WIDTH
from searchers.ax_searcher import AxSearcher

OBJECTIVES = {"val_acc": "max", "params": "min"}
LARGEST = "top=ws(n=10,k=5,p=0.5)|mid=er(n=10,p=1.0)|bot=ws(n=10,k=5,p=0.5)|stages=1:1:1|channels=1:2:4|seed=0"


def trainer(args: argparse.Namespace, build: dict) -> dict:
    return {"lr": args.lr, "batch_size": args.batch_size, "build": build}


def search(
    args: argparse.Namespace, name: str, space: str, searcher: str, objectives: dict, build: dict, options: dict
) -> None:
    start = time.perf_counter()
    outcome = run_search(SearchSettings(
        space=space, searcher=searcher, dataset="digits", num_samples=args.trials, max_concurrent=1,
        epochs=args.epochs, seed=args.seed, storage=str(Path(args.out).resolve()), name=name,
        objectives=objectives, trainer_options=trainer(args, build),
        searcher_options={"num_initial": args.init, **options} if searcher == "ax" else {},
    ), resume=str(Path(args.out).resolve() / name) if args.resume else None)  # fmt: skip
    meta_path = Path(args.out) / name / "bench.json"
    before = json.loads(meta_path.read_text())["wall_s"] if args.resume and meta_path.exists() else 0.0
    meta = {"wall_s": before + time.perf_counter() - start, "trials": outcome.num_trials, "epochs": args.epochs,
            "lr": args.lr, "batch_size": args.batch_size, "build": build, "seed": args.seed}  # fmt: skip
    meta_path.write_text(json.dumps(meta))


def reference_point(width: int, in_shape: tuple = (1, 8, 8), num_classes: int = 10) -> tuple[float, float]:
    """(chance accuracy, parameters of the largest generator at ``width``)."""
    space = get_space("nago")
    largest = space.build(space.parse(LARGEST), num_classes=num_classes, in_shape=tuple(in_shape), width=width)
    return 100.0 / num_classes, float(sum(p.numel() for p in largest.parameters()))


def run_mo(args: argparse.Namespace) -> None:
    """With ``--thresholds`` Ax is told the reference point (objective thresholds of its EHVI)."""
    acc, params = reference_point(args.width)
    options = {"outcome_constraints": [f"val_acc >= {acc}", f"params <= {params}"]} if args.thresholds else {}
    name = f"mo_{args.searcher}" + ("_ref" if args.thresholds else "") + (f"_s{args.seed}" if args.seed else "")
    search(args, name, "nago", args.searcher, OBJECTIVES, {"width": args.width}, options)


def run_single(args: argparse.Namespace) -> None:
    build = {"param_budget": args.budget} if args.space == "nago" else {"C": 16, "N": 1}
    search(args, f"single_{args.space}", args.space, args.searcher, {}, build, {})


def run_asha(args: argparse.Namespace) -> None:
    """Multi-objective Ax under ASHA: a stopped trial's last report is what Ax learns."""
    space = get_space("nago")
    name = "asha_ax"
    start = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_parameters(StandaloneTrainable, data=load_dataset("digits")),
        param_space={"space": "nago", "dataset": "digits", "epochs": args.max_epochs, "seed": args.seed,
                     **trainer(args, {"width": args.width})},  # fmt: skip
        tune_config=tune.TuneConfig(
            search_alg=AxSearcher(space, seed=args.seed, objectives=OBJECTIVES, num_initial=args.init),
            scheduler=ASHAScheduler(time_attr="epoch", max_t=args.max_epochs, grace_period=1, reduction_factor=2),
            metric="val_acc", mode="max", num_samples=args.trials, max_concurrent_trials=1, reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(Path(args.out).resolve()), name=name, verbose=0),
    )
    results = tuner.fit()
    write_parquet_atomic(trials_table(results), Path(args.out) / name / "trials.parquet")
    meta = {"wall_s": time.perf_counter() - start, "trials": len(results), "max_epochs": args.max_epochs,
            "lr": args.lr, "batch_size": args.batch_size, "build": {"width": args.width}, "seed": args.seed}  # fmt: skip
    (Path(args.out) / name / "bench.json").write_text(json.dumps(meta))


def synthetic(space, config: dict) -> dict[str, float]:
    spec = space.decode(config).spec
    size = spec.top_nodes * spec.mid_nodes * spec.bot_nodes
    return {"val_acc": 100.0 - 300.0 / (3.0 + size) - 5.0 * spec.top_p + spec.mid_p, "params": float(size)}


def run_bostep(args: argparse.Namespace) -> None:
    """Seconds per ``suggest`` + ``on_trial_complete`` after ``n`` observations (Ax alone)."""
    space = get_space("nago")
    path = Path(args.out) / "bostep.json"
    rows = [r for r in (json.loads(path.read_text()) if path.exists() else []) if r["observations"] not in args.observations]
    for n in args.observations:
        for label in ("multi", "single"):
            if label == "multi":
                searcher = AxSearcher(space, seed=args.seed, objectives=OBJECTIVES)
            else:
                searcher = AxSearcher(space, "val_acc", "max", seed=args.seed)
            rng = np.random.default_rng(args.seed)
            for arch in space.sample_unique(n, rng):
                config = space.encode(arch)
                searcher.add_evaluated_point(config, synthetic(space, config))
            times = []
            for i in range(args.steps):
                start = time.perf_counter()
                config = searcher.suggest(f"t{i}")
                searcher.on_trial_complete(f"t{i}", synthetic(space, config))
                times.append(time.perf_counter() - start)
            rows.append({"objectives": label, "observations": n, "steps": args.steps, "mean_s": float(np.mean(times)),
                         "max_s": float(np.max(times))})  # fmt: skip
            print(rows[-1], flush=True)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(sorted(rows, key=lambda r: (r["observations"], r["objectives"]))))


def _table(out: Path, name: str):
    path = out / name / "trials.parquet"
    return (pq.read_table(path), json.loads((out / name / "bench.json").read_text())) if path.exists() else (None, None)


def run_compare(args: argparse.Namespace) -> None:
    """Every searcher of ``--searchers`` for every seed, objectives (val_acc max, params min), the
    space's default build for them (a fixed width); ax searches both objectives, the others the first."""
    for searcher in args.searchers:
        for seed in args.seeds:
            start = time.perf_counter()
            outcome = run_search(SearchSettings(
                space="nago", searcher=searcher, dataset=args.dataset, num_samples=args.trials, max_concurrent=1,
                epochs=args.epochs, seed=seed, storage=str(Path(args.out).resolve()), name=f"cmp_{searcher}_s{seed}",
                objectives=OBJECTIVES, trainer_options={"lr": args.lr, "batch_size": args.batch_size},
                scheduler_options={"reduction_factor": 2} if searcher == "bohb" else {},  # NAGO's eta
                searcher_options={"num_initial": args.init} if searcher in ("ax", "tpe")
                else {"min_points": args.init} if searcher == "bohb" else {},
            ))  # fmt: skip
            meta = {"wall_s": time.perf_counter() - start, "trials": outcome.num_trials, "epochs": args.epochs,
                    "dataset": args.dataset, "seed": seed}  # fmt: skip
            (Path(args.out) / f"cmp_{searcher}_s{seed}" / "bench.json").write_text(json.dumps(meta))


def run_steps(args: argparse.Namespace) -> None:
    """Seconds per step (``suggest`` + one result + ``on_trial_complete``) of each searcher after
    ``n`` of its own steps on the synthetic objectives, for each ``n`` of ``--observations``."""
    from searchers import make_searcher

    space = get_space("nago")
    path = Path(args.out) / "steps.json"
    rows = [r for r in (json.loads(path.read_text()) if path.exists() else []) if r["searcher"] not in args.searchers]
    for name in args.searchers:
        searcher = make_searcher(name, space, "val_acc", "max", seed=args.seed, budget=max(args.observations) + args.steps,
                                 objectives=OBJECTIVES if name == "ax" else None)  # fmt: skip
        times: list[float] = []
        for i in range(max(args.observations) + args.steps):
            start = time.perf_counter()
            config = searcher.suggest(f"t{i}")
            result = {**synthetic(space, config), "training_iteration": 1}
            searcher.on_trial_result(f"t{i}", result)
            searcher.on_trial_complete(f"t{i}", result)
            times.append(time.perf_counter() - start)
        for n in args.observations:
            window = times[n:n + args.steps]
            rows.append({"searcher": name, "observations": n, "steps": len(window), "mean_s": float(np.mean(window)),
                         "max_s": float(np.max(window))})  # fmt: skip
            print(rows[-1], flush=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))  # after each searcher: a slow one cut short keeps the others


def report_compare(out: Path) -> None:
    """Hypervolume of the trials that trained all epochs (BOHB's stopped ones are at lower budgets)."""
    runs = {}
    for meta_path in sorted(out.glob("cmp_*_s*/bench.json")):
        runs.setdefault(meta_path.parent.name.rsplit("_s", 1)[0][4:], []).append(
            (pq.read_table(meta_path.parent / "trials.parquet"), json.loads(meta_path.read_text())))
    if runs:
        meta = next(iter(runs.values()))[0][1]
        data = load_dataset(meta["dataset"])
        reference = reference_point(SIZE_OBJECTIVE_WIDTH, data.in_shape, data.num_classes)
        box = (100.0 - reference[0]) * reference[1]
        print(f"\n## Searchers on {meta['dataset']}, {meta['epochs']} epochs, val_acc max / params min, width "
              f"{SIZE_OBJECTIVE_WIDTH}\n\nhypervolume: % of the box to (val_acc {reference[0]:.0f} %, params "
              f"{reference[1]:,.0f}) over the trials that trained all epochs\n")  # fmt: skip
        print("| searcher | seeds | trials | epochs trained / run | front size | hypervolume % (mean ± std) | "
              "best val_acc | wall s / run |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
        for name, tables in runs.items():
            hv, fronts = [], []
            for table, m in tables:
                full = table.filter(pc.greater_equal(table.column("epoch"), m["epochs"]))
                front = pareto_table(full, OBJECTIVES)
                fronts.append(front.num_rows)
                points = np.c_[front.column("val_acc").to_numpy(), front.column("params").to_numpy()]
                hv.append(100 * hypervolume(points, ["max", "min"], reference) / box)
            print(f"| {name} | {len(tables)} | {tables[0][0].num_rows} | "
                  f"{np.mean([sum(t.column('epoch').to_pylist()) for t, _ in tables]):.0f} | {np.mean(fronts):.1f} | "
                  f"{np.mean(hv):.1f} ± {np.std(hv):.1f} ({', '.join(f'{v:.1f}' for v in hv)}) | "
                  f"{np.mean([max(t.column('val_acc').to_pylist()) for t, _ in tables]):.1f} | "
                  f"{np.mean([m['wall_s'] for _, m in tables]):.0f} |")  # fmt: skip
    path = out / "steps.json"
    if path.exists():
        print("\n## Seconds per BO step (suggest + result + complete), synthetic objectives\n")
        print("| searcher | observations | steps | mean s | max s |\n|---|---|---|---|---|")
        for row in json.loads(path.read_text()):
            print(f"| {row['searcher']} | {row['observations']} | {row['steps']} | {row['mean_s']:.3f} | {row['max_s']:.3f} |")


def run_report(args: argparse.Namespace) -> None:
    out = Path(args.out)
    report_compare(out)
    print("## Multi-objective (val_acc max, params min) on digits, equal number of trials (seed 0 fronts below)\n")
    mo = {s: _table(out, f"mo_{s}") for s in ("ax", "ax_ref", "random")}
    width = next((m["build"]["width"] for _, m in mo.values() if m), args.width)
    reference = reference_point(width)
    box = (100.0 - reference[0]) * reference[1]
    print(f"reference point: val_acc {reference[0]:.0f} %, params {reference[1]:,.0f} (largest generator at width {width}); "
          "ax_ref: Ax given this point as objective thresholds\n")  # fmt: skip
    print("| searcher | seeds | trials | epochs | front size | hypervolume, % of box (mean ± std) | best val_acc | "
          "smallest params | wall s / run |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in mo:
        runs = [_table(out, f"mo_{name}")] + [_table(out, d.name) for d in sorted(out.glob(f"mo_{name}_s*")) if d.is_dir()]
        runs = [(t, m) for t, m in runs if t is not None]
        if not runs:
            continue
        fronts = [pareto_table(t, OBJECTIVES) for t, _ in runs]
        hv = np.array([
            100 * hypervolume(np.c_[f.column("val_acc").to_numpy(), f.column("params").to_numpy()], ["max", "min"], reference) / box
            for f in fronts
        ])  # fmt: skip
        print(f"| {name} | {len(runs)} | {runs[0][0].num_rows} | {runs[0][1]['epochs']} | "
              f"{np.mean([f.num_rows for f in fronts]):.1f} | {hv.mean():.1f} ± {hv.std():.1f} ({', '.join(f'{v:.1f}' for v in hv)}) | "
              f"{np.mean([max(t.column('val_acc').to_pylist()) for t, _ in runs]):.1f} | "
              f"{np.mean([min(t.column('params').to_pylist()) for t, _ in runs]):,.0f} | "
              f"{np.mean([m['wall_s'] for _, m in runs]):.0f} |")  # fmt: skip
    for name, (table, _) in mo.items():
        if table is not None:
            print(f"\nfront of {name}:\n\n| val_acc | params | arch |\n|---|---|---|")
            for row in pareto_table(table, OBJECTIVES).to_pylist():
                print(f"| {row['val_acc']:.1f} | {row['params']:,} | `{row['arch']}` |")

    print("\n## Best single-objective accuracy, same searcher (Ax), trainer and number of trials\n")
    print("| space | build | trials | best val_acc | its test_acc | its params | wall s |\n|---|---|---|---|---|---|---|")
    for space in ("nago", "nb201"):
        table, meta = _table(out, f"single_{space}")
        if table is not None:
            best = max(table.to_pylist(), key=lambda r: r["val_acc"] if r["val_acc"] is not None else -1)
            print(f"| {space} | {meta['build']} | {table.num_rows} | {best['val_acc']:.1f} | {best.get('test_acc', float('nan')):.1f} | "
                  f"{best['params']:,} | {meta['wall_s']:.0f} |")  # fmt: skip

    table, meta = _table(out, "asha_ax")
    if table is not None:
        epochs = table.column("epoch").to_pylist()
        full = meta["max_epochs"] * table.num_rows
        front = pareto_table(table, OBJECTIVES)
        points = np.c_[front.column("val_acc").to_numpy(), front.column("params").to_numpy()]
        print("\n## Multi-fidelity: multi-objective Ax under ASHA (epochs as resource, grace 1, rf 2)\n")
        seconds = np.array(table.column("time_total_s").to_pylist())
        unstopped = float(np.sum(seconds / np.array(epochs) * meta["max_epochs"]))  # each trial at its own epoch cost
        hv = hypervolume(points, ["max", "min"], reference)
        print("| trials | max epochs | epochs trained | without stopping | train s | without stopping (est.) | "
              "compute saved | front size | hypervolume (% of box) | wall s |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {table.num_rows} | {meta['max_epochs']} | {sum(epochs)} | {full} | {seconds.sum():.0f} | {unstopped:.0f} | "
              f"{1 - sum(epochs) / full:.0%} of epochs, {1 - seconds.sum() / unstopped:.0%} of seconds | "
              f"{front.num_rows} | {hv:,.0f} ({100 * hv / box:.1f}) | {meta['wall_s']:.0f} |")  # fmt: skip
        print(f"\nepochs per trial: {sorted(epochs, reverse=True)}")

    path = out / "bostep.json"
    if path.exists():
        print("\n## Wall time per Ax step (suggest + complete), synthetic objectives, default mixed strategy\n")
        print("| objectives | observations | steps | mean s | max s |\n|---|---|---|---|---|")
        for row in json.loads(path.read_text()):
            print(f"| {row['objectives']} | {row['observations']} | {row['steps']} | {row['mean_s']:.1f} | {row['max_s']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("mo", "single", "asha", "bostep", "compare", "steps", "report"))
    parser.add_argument("--out", default="/tmp/raynas_bench_nago")
    parser.add_argument("--searcher", default="ax")
    parser.add_argument("--space", default="nago", choices=("nago", "nb201"))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--init", type=int, default=6, help="trials before the model: ax's Sobol, tpe's random, bohb's min_points")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=4, help="ASHA's max_t")
    parser.add_argument("--width", type=int, default=4, help="NAGO base width of the multi-objective runs")
    parser.add_argument("--budget", type=int, default=100_000, help="NAGO parameter budget of the single-objective run")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="compare: one search per searcher and seed")
    parser.add_argument("--searchers", nargs="+", default=["bohb", "ax", "random", "tpe"], help="compare, steps")
    parser.add_argument("--dataset", default="digits", help="compare: the trials' dataset (as raynas search --dataset)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted mo / single run")
    parser.add_argument("--thresholds", action="store_true", help="mo with ax: give Ax the reference point")
    parser.add_argument("--observations", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--steps", type=int, default=3, help="timed Ax steps per observation count")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part in ("mo", "single", "asha", "compare"):
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    {"mo": run_mo, "single": run_single, "asha": run_asha, "bostep": run_bostep, "compare": run_compare,
     "steps": run_steps, "report": run_report}[args.part](args)


if __name__ == "__main__":
    main()
