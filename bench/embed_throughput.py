"""How fast are Jacobian features taken, next to the bare cost of the networks they come from?

For a sample of canonical NB201 architectures, at each network size (``--builds``), this
times, in this process on one torch thread:

* **features**: :func:`predictors.jacobian.jacobian_features` (``K`` seeded fresh builds, each
  with one forward and one input-only backward, BatchNorm on detached batch statistics, and
  the projection onto the shared basis), exactly as a Ray task of
  :func:`predictors.jacobian_store.extract_to_parquet` runs it;
* **bare**: the floor under that: the same ``K`` fresh builds of the same networks, then one
  forward of the same batch (input requires grad, training-mode BatchNorm, parameters frozen
  so that neither pass computes weight gradients) and the backward of the summed logits.

The two are timed alternately architecture by architecture (the order flipping each time),
taking the fastest of ``--repeats`` runs of each, so load from other jobs hits both alike.
``ratio`` is features / bare throughput (goal >= 0.8).  With ``--ray`` the end-to-end
throughput of ``extract_to_parquet`` (2 workers, a temporary directory) is added; ``ray.init``
and worker start-up are not counted (a small warm-up extraction runs first), so it is the
steady rate a long run settles at.  The last column extrapolates the wall time to
embed all 8,765 canonical NB201 classes with 2 workers: from the Ray throughput when
measured, else from twice the in-process features throughput.

    python bench/embed_throughput.py --archs 40 --dataset digits --batch-size 64 --inits 4 --proj 64 \
        --builds '[{"C": 8, "N": 1}, {}]' [--ray]
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import tempfile
import time
from typing import Any, Callable, Mapping

import torch

from predictors.jacobian import init_seed, input_basis, input_batch, jacobian_features
from predictors.jacobian_store import extract_to_parquet
from raynas.arch import Arch
from raynas.data import load_dataset
from search_spaces import SearchSpace, get_space

#: distinct canonical keys of the 15,625 NB201 cells: len({space.canonical(a).key for a in space.enumerate()})
NB201_CLASSES = 8765
WORKERS = 2


def bare_pass(space: SearchSpace, arch: Arch, inputs: torch.Tensor, num_inits: int, seed: int,
              num_classes: int, build: Mapping[str, Any]) -> None:
    """``num_inits`` fresh builds, each with one forward and the backward of its summed logits."""
    for k in range(num_inits):
        torch.manual_seed(init_seed(seed, k))
        net = space.build(arch, num_classes=num_classes, in_shape=tuple(inputs.shape[1:]), **build)
        net.requires_grad_(False)
        x = inputs.detach().requires_grad_(True)
        net(x).sum().backward()


def fastest(run: Callable[[], Any], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``run``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def in_process(space: SearchSpace, archs: list[Arch], inputs: torch.Tensor, basis: torch.Tensor,
               args: argparse.Namespace, num_classes: int, build: Mapping[str, Any]) -> tuple[float, float]:
    """Architectures per second of (features, bare), timed alternately on every architecture."""
    def features(arch: Arch) -> Callable[[], Any]:
        return lambda: jacobian_features(arch, space, inputs=inputs, num_inits=args.inits, proj=basis,
                                         seed=args.seed, num_classes=num_classes, build=build)

    def bare(arch: Arch) -> Callable[[], Any]:
        return lambda: bare_pass(space, arch, inputs, args.inits, args.seed, num_classes, build)

    features(archs[0])()  # warm-up: first-call allocations and kernel selection are not counted
    bare(archs[0])()
    totals = {"features": 0.0, "bare": 0.0}
    for i, arch in enumerate(archs):
        order = [("features", features), ("bare", bare)]
        for name, make in order if i % 2 == 0 else order[::-1]:
            totals[name] += fastest(make(arch), args.repeats)
    return len(archs) / totals["features"], len(archs) / totals["bare"]


def through_ray(space: SearchSpace, archs: list[Arch], args: argparse.Namespace, build: Mapping[str, Any]) -> float:
    """Architectures per second of ``extract_to_parquet`` into a temporary directory (running Ray session)."""
    with tempfile.TemporaryDirectory(prefix="raynas-embed-throughput-") as tmp:
        extract_to_parquet(space, archs[: 2 * WORKERS], args.dataset, os.path.join(tmp, "warm-up"),
                           num_inits=1, batch_size=args.batch_size, proj_dim=args.proj, seed=args.seed,
                           build=build, progress=False)  # start and warm every worker: not counted
        start = time.perf_counter()
        summary = extract_to_parquet(space, archs, args.dataset, os.path.join(tmp, "features"),
                                     num_inits=args.inits, batch_size=args.batch_size, proj_dim=args.proj,
                                     seed=args.seed, build=build, progress=False)
        seconds = time.perf_counter() - start
    if summary.written != len(archs):
        raise RuntimeError(f"extract_to_parquet wrote {summary.written} of {len(archs)} architectures")
    return len(archs) / seconds


def network_label(space: SearchSpace, build: Mapping[str, Any]) -> str:
    """``C=8, N=1``-style description of ``build`` over ``space.build``'s defaults."""
    defaults = {name: p.default for name, p in inspect.signature(space.build).parameters.items()
                if p.default is not p.empty and name not in ("num_classes", "in_shape")}
    settings = {**defaults, **build}
    text = ", ".join(f"{k}={v}" for k, v in settings.items())
    return text if build else f"{text} (default)"


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def parse_builds(text: str) -> list[dict[str, Any]]:
    try:
        builds = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--builds is not JSON ({err}): {text!r}") from None
    if not isinstance(builds, list) or not builds or not all(isinstance(b, dict) for b in builds):
        raise argparse.ArgumentTypeError(f"--builds must be a JSON list of build-option objects, e.g. '[{{\"C\": 8, \"N\": 1}}, {{}}]', got {text!r}")
    return builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=40, help="sampled distinct canonical NB201 architectures")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--batch-size", type=int, default=64, help="B images")
    parser.add_argument("--inits", type=int, default=4, help="K initialisations")
    parser.add_argument("--proj", type=int, default=64, help="P projection directions")
    parser.add_argument("--builds", type=parse_builds, default=[{"C": 8, "N": 1}, {}],
                        help="JSON list of NB201 build options, one network size each")
    parser.add_argument("--repeats", type=int, default=1, help="time each measurement this often, keep the fastest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ray", action="store_true", help=f"also time extract_to_parquet with {WORKERS} Ray workers")
    args = parser.parse_args()
    if args.archs < 1 or args.repeats < 1:
        raise ValueError(f"--archs and --repeats must be >= 1, got {args.archs} and {args.repeats}")
    torch.set_num_threads(1)
    space = get_space("nb201")
    archs = list(dict.fromkeys(space.canonical(a) for a in space.sample_unique(args.archs, args.seed)))
    data = load_dataset(args.dataset)
    inputs = input_batch(data, args.batch_size, "train", args.seed)
    basis = torch.from_numpy(input_basis(inputs, args.proj))
    if args.ray:
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for build in args.builds:
            feats, bare = in_process(space, archs, inputs, basis, args, data.num_classes, build)
            ray_rate = through_ray(space, archs, args, build) if args.ray else None
            rows.append((network_label(space, build), feats, bare, ray_rate))
    finally:
        if args.ray:
            ray.shutdown()

    print(f"NB201, {len(archs)} canonical archs, {args.dataset} B={args.batch_size} K={args.inits} "
          f"P={basis.shape[1]}, 1 torch thread, fastest of {args.repeats}, {os.cpu_count()} CPUs\n")
    ray_head = f" | Ray {WORKERS} workers arch/s" if args.ray else ""
    print(f"| network | archs | features arch/s | bare arch/s | ratio{ray_head} | all {NB201_CLASSES:,} classes, {WORKERS} workers |")
    print("| --- " * (6 + bool(args.ray)) + "|")
    for label, feats, bare, ray_rate in rows:
        rate = ray_rate if ray_rate is not None else WORKERS * feats
        ray_cell = f" | {ray_rate:.1f}" if ray_rate is not None else ""
        print(f"| {label} | {len(archs)} | {feats:.1f} | {bare:.1f} | {feats / bare:.2f}{ray_cell} | "
              f"{duration(NB201_CLASSES / rate)} |")
    source = f"Ray throughput ({WORKERS} workers)" if args.ray else f"{WORKERS} x in-process features throughput"
    print(f"\nratio = features / bare (goal >= 0.8); wall times extrapolated from {source}")


if __name__ == "__main__":
    main()
