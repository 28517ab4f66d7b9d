"""A small NAS run that works the same on a laptop and on the cluster of ``cluster.yaml``.

    python examples/nb201_search.py                         # Ray started on this machine
    ray submit cluster.yaml examples/nb201_search.py        # on the head node: joins the cluster

Regularised evolution over NAS-Bench-201 cells, every candidate a real network trained on
scikit-learn's digits (shipped with the package, so no node downloads anything).  On a cluster
node (``RAY_ADDRESS`` set, or a running Ray found in ``/tmp/ray``) it joins with
``address="auto"``; otherwise it starts Ray here.  Flags scale it up, e.g.
``--num-samples 64 --max-concurrent 8 --epochs 10``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import ray


def on_cluster() -> bool:
    """True on a node of a running Ray cluster (what ``ray submit`` gives the script)."""
    return bool(os.environ.get("RAY_ADDRESS")) or Path("/tmp/ray/ray_current_cluster").exists()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=8, help="trials (architectures) to train")
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials running at once")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per trial")
    parser.add_argument("--storage", default="~/ray_results", help="where Tune writes the experiment")
    parser.add_argument("--name", default="nb201-example", help="experiment folder under --storage")
    parser.add_argument("--local", action="store_true", help="start Ray here even when a cluster is running")
    args = parser.parse_args(argv)

    from raynas.experiment import SearchSettings, run_search

    if args.local or not on_cluster():
        ray.init(include_dashboard=False)
    else:
        ray.init(address="auto")
    print(f"Ray nodes: {len(ray.nodes())}, CPUs: {ray.cluster_resources().get('CPU', 0):.0f}")
    settings = SearchSettings(
        space="nb201",
        searcher="rea",
        trainable="standalone",
        dataset="digits",
        num_samples=args.num_samples,
        max_concurrent=args.max_concurrent,
        epochs=args.epochs,
        storage=args.storage,
        name=args.name,
        searcher_options={"population_size": max(4, args.num_samples // 2)},
        trainer_options={"build": {"C": 8, "N": 1}},
    )
    outcome = run_search(settings)
    print(f"{outcome.num_trials} trials; best {outcome.best_arch} {outcome.best_metrics}")
    print(f"trials table {outcome.trials_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
