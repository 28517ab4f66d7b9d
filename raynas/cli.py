"""The ``raynas`` command line.  Each sub-command lives in one small function; ``main``
only parses arguments and dispatches.  Only the chosen sub-command's options are configured,
and heavy modules (torch, Ray) are imported by the sub-command that needs them, so
``raynas --help`` answers at once."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable, Sequence

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it has none or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if action.default is None or action.default is False or action.default == [] or "default" in help_text:
            return help_text
        return super()._get_help_string(action) or help_text


def _configure_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space: a name (see `raynas spaces`), "
                        "path/to/file.py:NAME or package.module:NAME")  # fmt: skip
    parser.add_argument("--arch", help="architecture string; default: a random sample")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random sample")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--in-shape", default="3,32,32", help="C,H,W of one input image")


def _in_shape(text: str) -> tuple[int, int, int]:
    """``"3,32,32"`` -> ``(3, 32, 32)``."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--in-shape must be C,H,W (three positive integers), got {text!r}")
    return shape  # type: ignore[return-value]


def _run_inspect(args: argparse.Namespace) -> int:
    """Build one architecture's real network, run it once, and print what it is."""
    import torch

    from search_spaces import get_space

    space = get_space(args.space)
    arch = space.parse(args.arch) if args.arch else space.sample(args.seed)
    in_shape = _in_shape(args.in_shape)
    model = space.build(arch, num_classes=args.num_classes, in_shape=in_shape).eval()
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(torch.randn(8, *in_shape))
    elapsed_ms = (time.perf_counter() - start) * 1e3
    print(f"space      {space.name}")
    print(f"arch       {arch}")
    print(f"canonical  {space.canonical(arch)}  (key {arch.key})")
    print(f"params     {sum(p.numel() for p in model.parameters()):,}")
    print(f"forward    8 x {in_shape} -> {tuple(logits.shape)} in {elapsed_ms:.1f} ms")
    return 0


def _configure_spaces(parser: argparse.ArgumentParser) -> None:
    """No options."""


def _run_spaces(args: argparse.Namespace) -> int:
    from search_spaces import space_listing

    for name, what in space_listing():
        print(f"{name:12s} {what}")
    print("\nyour own: --space path/to/file.py:NAME or --space package.module:NAME (a FunctionSpace or SearchSpace)")
    return 0


def _key_values(pairs: Sequence[str], flag: str) -> dict[str, object]:
    """``["lr=0.1", "augment=false", "ssl_method=nce"]`` -> ``{"lr": 0.1, "augment": False,
    "ssl_method": "nce"}``: JSON values, and plain words as text; a value that starts like
    JSON (``{``, ``[``, ``"``) must be valid JSON."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError as err:
            if raw.lstrip()[:1] in ("{", "[", '"'):
                raise ValueError(f"{flag} {key}: {raw!r} is not valid JSON ({err.msg} at character {err.pos})") from None
            out[key] = raw
    return out


def _configure_search(parser: argparse.ArgumentParser) -> None:
    from raynas.experiment import SearchSettings
    from raynas.search_presets import SEARCH_PRESETS
    from raynas.trainables.registry import available_trainables, trainable_info
    from searchers.registry import available_searchers

    d = SearchSettings()
    trainables = "; ".join(f"{n}: {trainable_info(n).summary}" for n in available_trainables())
    parser.add_argument("--space", default=d.space, help="search space: a name (see `raynas spaces`), "
                        "path/to/file.py:NAME or package.module:NAME")  # fmt: skip
    parser.add_argument("--searcher", help=f"one of {', '.join(available_searchers())} (default {d.searcher}; bohb "
                        "runs with its HyperBand scheduler, budgets in epochs up to --epochs)")  # fmt: skip
    parser.add_argument("--trainable", choices=available_trainables(), help=f"{trainables} (default {d.trainable})")
    parser.add_argument("--preset", help="a published search protocol: " + "; ".join(
        f"{k}: {p.summary}" for k, p in SEARCH_PRESETS.items()) + "; flags given explicitly win")  # fmt: skip
    parser.add_argument("--dataset", help="digits | cifar10:DIR | cifar100:DIR | cifar100-coarse:DIR | imagefolder:DIR | "
                        "npz:FILE | synthetic[:N], each optionally @SIZE (default: digits; for --trainable benchmark the "
                        "table's dataset)")  # fmt: skip
    parser.add_argument("--benchmark", help="Parquet benchmark table (for --trainable benchmark; differentiable: "
                        "reports each derived cell's table accuracy as table_acc)")  # fmt: skip
    parser.add_argument("--metric", help="metric to optimise (default: val_acc, for --trainable selfsup ssl_loss)")
    parser.add_argument("--mode", choices=("max", "min"), help="default: min for losses, params and flops, else max")
    parser.add_argument("--objectives", metavar="METRIC:MODE,...", help="several objectives, e.g. val_acc:max,params:min "
                        "(ax searches all of them, other searchers the first); prints and writes the Pareto front")  # fmt: skip
    parser.add_argument("--num-samples", type=int, help=f"trials to run (default {d.num_samples})")
    parser.add_argument("--max-concurrent", type=int, default=d.max_concurrent, help="trials running at once")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS", help="stop the search after this long: no new "
                        "trial starts and running ones stop, each keeping what it reported (default: no limit)")  # fmt: skip
    parser.add_argument("--cpus-per-trial", type=float, default=d.cpus_per_trial, help="CPUs each trial asks Ray for "
                        "(its torch threads)")  # fmt: skip
    parser.add_argument("--gpus-per-trial", type=float, default=d.gpus_per_trial, help="GPUs each trial asks Ray for; "
                        "0.5 runs two trials on each GPU (default 0: CPU)")  # fmt: skip
    parser.add_argument("--epochs", type=int, help=f"training epochs per trial (standalone: default {d.epochs}; selfsup: 10, as CSNAS)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the searcher and of every trial")
    parser.add_argument("--storage", default=d.storage, help="where Tune writes the experiment")
    parser.add_argument("--name", help="experiment name (a folder under --storage)")
    parser.add_argument("--address", help="Ray cluster to join: auto or HOST:PORT (default: start Ray here)")
    parser.add_argument("--max-failures", type=int, default=d.max_failures, help="times a failed trial is restarted "
                        "from its last checkpoint (a lost node, a killed worker; -1: no limit)")  # fmt: skip
    parser.add_argument("--checkpoint-every", type=float, default=d.checkpoint_every_s, metavar="SECONDS",
                        help="a trial checkpoints when this long has passed since its last checkpoint, and at its end "
                        "(0: every epoch); what a lost worker can cost")  # fmt: skip
    parser.add_argument("--resume", metavar="EXPERIMENT_DIR", help="continue an interrupted experiment")
    parser.add_argument("--verbose", action="store_true", help="Ray's full output (trial tables, worker logs) instead "
                        "of one progress line")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="trainer config, e.g. lr=0.1")
    parser.add_argument("--searcher-opt", action="append", default=[], metavar="KEY=VALUE", help="e.g. population_size=20")
    parser.add_argument("--scheduler-opt", action="append", default=[], metavar="KEY=VALUE", help="options of the "
                        "scheduler a searcher brings: bohb's min_t (default epochs/eta**2, or the next that divides), reduction_factor (eta, 3)")  # fmt: skip


def _objectives(text: str | None) -> dict[str, str]:
    """``"val_acc:max,params:min"`` -> ``{"val_acc": "max", "params": "min"}``."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        name, sep, mode = item.strip().partition(":")
        if not item.strip():
            continue
        if not sep or not name or mode not in ("max", "min"):
            raise ValueError(f"--objectives takes METRIC:max or METRIC:min items, comma-separated; got {item.strip()!r}")
        out[name] = mode
    return out


def _print_front(rows: list[dict], objectives: dict[str, str]) -> None:
    """The Pareto front as a table: one row per trial, objectives first, then the arch."""
    print(f"\nPareto front ({len(rows)} trials; {', '.join(f'{m} {k}' for k, m in objectives.items())})")
    print("  ".join(f"{k:>12s}" for k in objectives) + "  arch")
    for row in rows:
        cells = [f"{row[k]:>12.6g}" if isinstance(row.get(k), (int, float)) else f"{row.get(k)!s:>12s}" for k in objectives]
        print("  ".join(cells) + f"  {row.get('arch')}")


def _run_search(args: argparse.Namespace) -> int:
    from raynas.experiment import SearchSettings, run_search

    objectives = _objectives(args.objectives)
    if objectives:
        args.metric, args.mode = next(iter(objectives.items()))
    from raynas.search_presets import PRESET_FIELDS, apply_preset

    given = {k for k in PRESET_FIELDS if getattr(args, k, None) is not None}  # flags left out are None
    defaults = SearchSettings()
    values = apply_preset(args.preset, {
        "searcher": args.searcher or defaults.searcher,
        "trainable": args.trainable or defaults.trainable,
        "epochs": args.epochs,  # None: filled in below, once the trainable is known
        "num_samples": defaults.num_samples if args.num_samples is None else args.num_samples,
        "trainer_options": _key_values(args.set, "--set"),
        "searcher_options": _key_values(args.searcher_opt, "--searcher-opt"),
        "scheduler_options": _key_values(args.scheduler_opt, "--scheduler-opt"),
    }, given)  # fmt: skip
    if values["epochs"] is None:  # the label-free objective is defined at its published length (CSNAS: 10 epochs)
        from raynas.trainables.settings import SelfSupSettings

        values["epochs"] = SelfSupSettings.epochs if values["trainable"] == "selfsup" else defaults.epochs
    settings = SearchSettings(
        space=args.space,
        dataset=args.dataset,
        benchmark=args.benchmark,
        metric=args.metric,
        mode=args.mode,
        max_concurrent=args.max_concurrent,
        time_budget_s=args.time_budget,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        seed=args.seed,
        storage=args.storage,
        name=args.name,
        address=args.address,
        max_failures=args.max_failures,
        checkpoint_every_s=args.checkpoint_every,
        verbose=args.verbose,
        objectives=objectives,
        **values,
    )
    start = time.perf_counter()
    outcome = run_search(settings, resume=args.resume)
    print(f"\n{outcome.num_trials} trials in {time.perf_counter() - start:.0f} s")
    if settings.time_budget_s is not None and outcome.num_trials < settings.num_samples:
        print(f"the time budget ({settings.time_budget_s:g} s) stopped the search after {outcome.num_trials} of "
              f"{settings.num_samples} trials; a trial it stopped keeps its last epoch's results")  # fmt: skip
    if outcome.num_errors:
        print(f"{outcome.num_errors} of them failed; the first: {outcome.first_error}")
    print(f"best architecture  {outcome.best_arch}")
    for key, value in outcome.best_metrics.items():
        print(f"  {key:10s} {value:.4g}" if isinstance(value, float) else f"  {key:10s} {value}")
    print(f"trials table       {outcome.trials_path}")
    print(f"trajectory plot    {outcome.plot_path}")
    print(f"report             {outcome.report_path}")
    if objectives:
        _print_front(outcome.pareto_front, objectives)
        print(f"Pareto table       {outcome.pareto_path}")
        print(f"Pareto plot        {outcome.pareto_plot_path}")
    return 0


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default="~/ray_results", help="where Tune writes the experiment")
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)


def _run_demo(args: argparse.Namespace) -> int:
    """The embedded default search: REA over NB201 cells, trained on scikit-learn's digits."""
    demo = [
        "--space", "nb201", "--searcher", "rea", "--trainable", "standalone", "--dataset", "digits",
        "--num-samples", str(args.num_samples), "--epochs", str(args.epochs), "--max-concurrent", "2",
        "--storage", args.storage, "--name", "raynas-demo", "--searcher-opt", "population_size=8",
    ]  # fmt: skip
    return _run_search(build_parser("search").parse_args(["search", *demo]))


#: ``raynas embed --preset``: values for the flags a user leaves out (a given flag wins).
#: "paper" is Hesslow & Poli's setting: 256 images (CIFAR-10 when --dataset names a folder),
#: the full-size NB201 network, per-matrix SVD, DeepSet 4+4 layers, ReLU-Linear(256) head,
#: Adam 5e-5 on batches of 1,024 architectures.
EMBED_PRESETS: dict[str, dict[str, Any]] = {
    "raynas": {"epochs": 30, "train_batch": 256, "lr": 1e-3, "embed_dim": 256, "layers": 2, "head": "simclr",
               "head_dim": 128, "projection": "input", "build": "{}"},
    "paper": {"epochs": 30, "train_batch": 1024, "lr": 5e-5, "embed_dim": 256, "layers": 4, "head": "linear",
              "head_dim": 256, "projection": "svd", "build": '{"nb201": {"C": 16, "N": 5}}',
              "dataset": "synthetic:1024", "inits": 4, "batch_size": 256, "proj": 128},
}  # fmt: skip


def _configure_embed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space, or several comma-separated (one shared encoder)")
    parser.add_argument("--dataset", help="images the Jacobians are taken on (default: the encoder's, else digits; "
                        "--preset paper: synthetic:1024, give cifar10:DIR for the published CIFAR-10 images)")
    parser.add_argument("--out", required=True, help="embeddings table to write (Parquet: space, arch, key, embedding)")
    parser.add_argument("--num-archs", type=int, help="architectures to sample per space (default: all of a finite space)")
    parser.add_argument("--address", help="Ray cluster to join: auto or HOST:PORT (default: start Ray here)")
    parser.add_argument("--gpus-per-task", type=float, default=0.0, help="GPUs per feature task (0.25: four per GPU)")
    parser.add_argument("--features", help="features root, one resumable directory per space (default: <out>.features)")
    parser.add_argument("--train-encoder", action="store_true", help="train a new encoder on these features")
    parser.add_argument("--encoder", help="encoder directory to load, or to save a trained one to (default: <out>.encoder)")
    parser.add_argument("--preset", choices=sorted(EMBED_PRESETS), default="raynas",
                        help="defaults of the flags below: raynas's, or the paper's (Hesslow & Poli) for a new encoder")
    parser.add_argument("--epochs", type=int, help="encoder training epochs (30)")
    parser.add_argument("--train-batch", type=int, help="architectures per encoder training step (256; paper 1024)")
    parser.add_argument("--lr", type=float, help="encoder learning rate, Adam, x0.95 per epoch (1e-3; paper 5e-5)")
    parser.add_argument("--embed-dim", type=int, help="size of a new encoder's embeddings (256)")
    parser.add_argument("--layers", type=int, help="linear layers in each half of the DeepSet (2; paper 4)")
    parser.add_argument("--head", choices=("simclr", "linear"), help="contrastive head (simclr; paper linear)")
    parser.add_argument("--head-dim", type=int, help="width of the contrastive head's output (128; paper 256)")
    parser.add_argument("--projection", choices=("input", "svd"),
                        help="shared input basis, or each Jacobian's own SVD (input; paper svd)")
    parser.add_argument("--inits", type=int, help="K random initialisations per architecture (default: the encoder's, else 4)")
    parser.add_argument("--batch-size", type=int, help="B images per Jacobian (default: the encoder's, else 256)")
    parser.add_argument("--proj", type=int, help="P projection directions (default: the encoder's, else 128)")
    parser.add_argument("--build", help='space.build options as JSON, e.g. \'{"C": 8, "N": 1}\', '
                        'or per space: \'{"nb201": {"C": 8}, "nb101": {"stem_channels": 16}}\'')  # fmt: skip
    parser.add_argument("--seed", type=int, help="images, initialisations and sampled archs (default: the encoder's, else 0)")


def _embed_builds(text: str, spaces: list[str]) -> dict[str, dict]:
    """``--build`` JSON: one dict of build options for every space, or a dict per space name."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--build must be a JSON object, got {text!r}: {err}") from None
    if not isinstance(options, dict):
        raise ValueError(f"--build must be a JSON object, got {text!r}")
    if options and set(options) <= set(spaces) and all(isinstance(v, dict) for v in options.values()):
        return options
    return {name: options for name in spaces}


def _run_embed(args: argparse.Namespace) -> int:
    """Jacobian features -> contrastive encoder -> embeddings table (resumable)."""
    from predictors.embed_pipeline import FeatureSettings, build_embeddings, load_encoder
    from search_spaces import get_space

    spaces = [get_space(name.strip()).name for name in args.space.split(",") if name.strip()]
    encoder_dir = args.encoder or f"{args.out}.encoder"
    preset = EMBED_PRESETS[args.preset]
    trained_on: dict = {}
    if not args.train_encoder:
        meta = load_encoder(encoder_dir).feature_meta_
        trained_on = vars(FeatureSettings.from_meta(meta)) if meta else {}
    for name, value in preset.items():  # a preset's feature settings apply to a new encoder only
        if getattr(args, name) is None and (args.train_encoder or name not in ("dataset", "inits", "batch_size", "proj")):
            setattr(args, name, value)
    given = {"dataset": args.dataset, "num_inits": args.inits, "batch_size": args.batch_size, "proj_dim": args.proj,
             "seed": args.seed, "projection": args.projection if args.train_encoder else None}  # fmt: skip
    settings = FeatureSettings(**{**vars(FeatureSettings()), **trained_on, **{k: v for k, v in given.items() if v is not None}})
    summary = build_embeddings(
        spaces, args.out, settings, archs=args.num_archs, features_root=args.features,
        encoder=encoder_dir, train=args.train_encoder,
        train_options={"epochs": args.epochs, "batch_size": args.train_batch, "lr": args.lr, "seed": settings.seed,
                       "embed_dim": args.embed_dim, "layers": args.layers, "head": args.head, "head_dim": args.head_dim},
        builds=_embed_builds(args.build, spaces), address=args.address, gpus_per_task=args.gpus_per_task,
    )  # fmt: skip
    for name, done in summary.spaces.items():
        print(f"{name:8s} {summary.counts[name]} archs: {done.written} computed, {done.already_stored} already stored  "
              f"features {done.path}")  # fmt: skip
    rate = sum(d.written for d in summary.spaces.values()) / max(summary.extract_s, 1e-9)
    print(f"features   {summary.extract_s:.1f} s ({rate:.1f} arch/s computed)")
    if summary.trained:
        losses = summary.loss_history
        print(f"encoder    trained {len(losses)} epochs in {summary.train_s:.1f} s (loss {losses[0]:.3f} -> "
              f"{losses[-1]:.3f}), saved to {summary.encoder_path}")  # fmt: skip
    else:
        print(f"encoder    loaded from {summary.encoder_path}")
    total = sum(summary.counts.values())
    print(f"embeddings {total} x {summary.dim} in {summary.embed_s:.1f} s -> {summary.out}")
    print(f"total      {summary.total_s:.1f} s, {total / max(summary.total_s, 1e-9):.1f} arch/s")
    return 0


def _configure_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="+", metavar="FILE.py:FUNCTION", help="function building your nn.Module "
                        "(called with num_classes= when it takes it); also package.module:FUNCTION")  # fmt: skip
    parser.add_argument("--reference", default="nb201", help="reference search space")
    parser.add_argument("--benchmark", required=True, help="the reference space's Parquet table (e.g. nb201_all.parquet)")
    parser.add_argument("--dataset", default="cifar10", help="dataset column of the table")
    parser.add_argument("--num-archs", type=int, default=500, help="labelled reference architectures to fit on")
    parser.add_argument("--predictor", help="a reference predictor directory: loaded if present, else fitted and "
                        "saved there (default: a cache folder keyed by these settings)")  # fmt: skip
    parser.add_argument("--cache-dir", default="~/.cache/raynas/predict", help="where fitted reference predictors are kept")
    parser.add_argument("--in-shape", default="3,32,32", help="C,H,W of one input image (the reference's, for NB201 3,32,32)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--neighbors", type=int, default=3, help="closest reference architectures to list")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="where the predictor trains and predicts: auto (a GPU when "
                        "there is one), cpu, cuda, cuda:N")  # fmt: skip


def _run_predict(args: argparse.Namespace) -> int:
    """Fit (or load) a reference predictor on a table and score the user's models against it."""
    from pathlib import Path

    import torch

    from predictors.reference import Reference, build_user_model, cache_key, load_builder, reference_predictor
    from raynas.benchmarks import check_table
    from raynas.devices import resolve_device
    from raynas.parallel import ray_session

    in_shape = _in_shape(args.in_shape)
    device = str(resolve_device(args.device, range(torch.cuda.device_count())))
    models = [build_user_model(load_builder(spec), args.num_classes, in_shape) for spec in args.model]
    check_table(args.benchmark, args.reference, args.dataset)
    key = cache_key(args.benchmark, args.reference, args.dataset, args.num_archs, args.seed, in_shape=in_shape)
    folder = Path(args.predictor or Path(args.cache_dir).expanduser() / key)
    start = time.perf_counter()
    if (folder / "reference.json").is_file():
        reference = Reference.load(folder, device)
        action = f"loaded from {folder}"
    else:
        predictor = reference_predictor(
            args.reference, args.seed, input_shape=(1, *in_shape), progress=True, cache_dir=folder / "graphs", device=device,
            use_ray=True,  # tracing the references on every core: the larger part of a first call
        )
        reference = Reference.from_table(args.benchmark, args.reference, args.dataset, args.num_archs, args.seed, predictor)
        print(f"fitting a CG predictor on {len(reference.archs)} {args.reference} architectures (kept in {folder})",
              file=sys.stderr)  # fmt: skip
        with ray_session(start=False):  # the tracing passes share one Ray session
            reference.fit().save(folder)
        action = f"fitted on {len(reference.archs)} archs in {time.perf_counter() - start:.0f} s, saved to {folder}"
    print(f"reference  {reference.space} ({args.dataset} valid accuracy), CG predictor {action}")
    print(f"           its error on held-out reference architectures: {reference.holdout_rmse:.2f} (RMSE)")
    for spec, model in zip(args.model, models):
        s = reference.score(model, args.neighbors, in_shape)
        print(f"\n{spec}  ({s.params:,} params)")
        print(f"  predicted accuracy  {s.predicted:.2f} ± {s.std:.2f}")
        print(f"  percentile          {s.table_percentile:.0f}% of the reference table's accuracies lie below it; "
              f"the predictor ranks it above {s.predicted_percentile:.0f}% of them")  # fmt: skip
        if s.ignores_input:
            print("  warning             its output does not depend on its input: it cannot learn; scored at chance")
        if s.out_of_distribution:
            print(f"  warning             out of distribution: {s.distance:.1f}x farther from the nearest reference than "
                  "references typically are from each other; the prediction is an extrapolation")  # fmt: skip
        for arch, acc, cosine in s.neighbors:
            print(f"  similar             {arch}  accuracy {acc:.2f}  cosine {cosine:.2f}")
    return 0


def _configure_train(parser: argparse.ArgumentParser) -> None:
    from raynas.retrain import PRESETS, SPACE_PRESETS

    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--from", dest="experiment", metavar="EXPERIMENT_DIR", help="a finished search: retrain its best "
                      "architectures (its Pareto set for a multi-objective search)")  # fmt: skip
    what.add_argument("--arch", action="append", metavar="ARCH", help="an architecture to train (repeat for several)")
    what.add_argument("--resume", metavar="EXPERIMENT_DIR", help="continue an interrupted retraining")
    parser.add_argument("--top-k", type=int, default=3, help="how many of the search's best to retrain (with --from)")
    parser.add_argument("--space", help="the space of --arch (default nb201), or your own space for --from "
                        "(path/to/file.py:NAME or package.module:NAME)")  # fmt: skip
    presets = ", ".join(f"{k}: {v['epochs']} epochs, build {v['build']}" for k, v in PRESETS.items())
    parser.add_argument("--preset", default="auto", help=f"final-training protocol: auto (the space's: "
                        f"{SPACE_PRESETS}), none (the search's trainer settings), or {presets}")  # fmt: skip
    parser.add_argument("--dataset", help="images to train on (default: the search's; see raynas search --help)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="trainer keys over the preset, "
                        "e.g. lr=0.05 or build='{\"C\": 16}' (build is merged key by key)")  # fmt: skip
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials running at once")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial asks Ray for")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs each trial asks Ray for")
    parser.add_argument("--seed", type=int, default=0, help="seed of every trial")
    parser.add_argument("--storage", help="where Tune writes the experiment (default: beside the --from search, "
                        "else ~/ray_results)")  # fmt: skip
    parser.add_argument("--name", help="experiment name (default: <search>-retrain, or <space>-train_<time>)")
    parser.add_argument("--address", help="Ray cluster to join: auto or HOST:PORT (default: start Ray here)")
    parser.add_argument("--max-failures", type=int, default=2, help="times a failed trial is restarted from its checkpoint")
    parser.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS", help="a trial checkpoints "
                        "when this long has passed since its last checkpoint, and at its end (0: every epoch)")  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="Ray's full output instead of one progress line")
    parser.add_argument("--dry-run", action="store_true", help="print what would be trained, and how, then stop")


def _run_train(args: argparse.Namespace) -> int:
    """Retrain architectures from scratch at full size, one trial each (``raynas.retrain``)."""
    from raynas import retrain, storage
    from raynas.experiment import SearchSettings, run_search

    run = dict(
        max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        seed=args.seed, storage=args.storage, name=args.name, address=args.address, max_failures=args.max_failures,
        checkpoint_every_s=args.checkpoint_every, verbose=args.verbose,
        preset=args.preset, dataset=args.dataset, epochs=args.epochs, trainer_options=_key_values(args.set, "--set"),
    )  # fmt: skip
    if args.resume:
        outcome = run_search(SearchSettings(address=args.address, verbose=args.verbose), resume=args.resume)  # the saved settings, this address
    else:
        if args.experiment:
            settings = retrain.from_experiment(args.experiment, args.top_k, space=args.space, **run)
        else:
            space = args.space or "nb201"
            run["name"] = run["name"] or f"{space.rsplit(':', 1)[-1]}-train_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
            run["storage"] = run["storage"] or SearchSettings.storage
            settings = retrain.train_settings(args.arch, space, **run)
        settings = settings.check()
        print(f"retraining {settings.num_samples} {settings.space.name} architecture(s) on {settings.dataset} for "
              f"{settings.epochs} epochs with {json.dumps(settings.trainer_options, sort_keys=True)}")  # fmt: skip
        for arch in settings.searcher_options["archs"]:
            print(f"  {arch}")
        print(f"into {storage.join(storage.resolve(settings.storage), settings.name)}")
        if args.dry_run:
            return 0
        outcome = run_search(settings)
    _print_trained(outcome)
    return 0


def _print_trained(outcome: object) -> None:
    """One line per retrained architecture: the last epoch's val_acc, the best one (the weights
    in ``best.pt``), test_acc after the last epoch, and where its weights are."""
    from raynas.io import read_parquet

    rows = read_parquet(outcome.trials_path, "trials table").to_pylist()
    rows.sort(key=lambda r: -(r.get("val_acc") or -1.0))
    print(f"\n{'val_acc':>8s} {'best val_acc (epoch)':>20s} {'test_acc':>8s} {'epochs':>6s}  arch")
    for r in rows:
        cells = [f"{r[k]:8.2f}" if isinstance(r.get(k), float) else f"{'-':>8s}" for k in ("val_acc", "test_acc")]
        best = f"{r['best_val_acc']:.2f} ({r.get('best_epoch')})" if isinstance(r.get("best_val_acc"), float) else "-"
        print(f"{cells[0]} {best:>20s} {cells[1]} {r.get('epoch') or 0:6d}  {r.get('arch')}")
        if r.get("error"):
            print(f"{'':24s}failed: {r['error']}")
    print(f"trials table  {outcome.trials_path}  (weights: each trial's checkpoint, state.pt last, best.pt best val_acc)")
    print(f"report        {outcome.report_path}")


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", metavar="EXPERIMENT_OR_TRAIN_DIR", help="a finished search or raynas train folder")
    parser.add_argument("--format", default="torchscript", choices=("torchscript", "onnx", "state_dict"),
                        help="onnx needs the export extra: pip install -e '.[export]'")  # fmt: skip
    parser.add_argument("--out", required=True, help="folder to write one sub-folder per model into")
    parser.add_argument("--top-k", type=int, default=1, help="how many of the best to export (multi-objective: the Pareto set)")
    parser.add_argument("--space", help="the experiment's space when it was your own (path/to/file.py:NAME)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest output difference the self-check accepts, "
                        "relative to the largest output when that is above 1")  # fmt: skip


def _run_export(args: argparse.Namespace) -> int:
    """Export the best networks, each checked against its PyTorch original."""
    from raynas.export import export_models

    for folder in export_models(args.experiment, args.out, args.format, args.top_k, args.space, args.atol):
        meta = json.loads((folder / "model.json").read_text())
        metrics = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:.4g}"
                            for k, v in meta["metrics"].items() if k in ("val_acc", "test_acc", "params"))  # fmt: skip
        print(f"{folder}  {meta['format']} in {meta['export_s']:.1f} s, max |diff| {meta['max_abs_diff']:.1e}  ({metrics})")
        print(f"  {meta['arch']}")
    return 0


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="a search's or a training run's folder "
                        "(the one holding trials.parquet)")  # fmt: skip
    parser.add_argument("--top", type=int, default=3, help="best architectures whose cells are drawn")


def _run_report(args: argparse.Namespace) -> int:
    """Write the experiment's report.html (plots, trials, cells, settings; no network needed)."""
    from raynas.report import write_report

    print(f"report  {write_report(args.experiment, top=args.top)}")
    return 0


#: name -> (help, add arguments, run); new sub-commands are one entry here
COMMANDS: dict[str, tuple[str, Configure, Run]] = {
    "inspect": ("build one architecture's network and print its size", _configure_inspect, _run_inspect),
    "spaces": ("list the registered search spaces", _configure_spaces, _run_spaces),
    "search": ("run a NAS experiment through Ray Tune", _configure_search, _run_search),
    "export": ("export the best networks as TorchScript, ONNX or weights, self-checked", _configure_export, _run_export),
    "train": ("retrain a search's best architectures from scratch at full size", _configure_train, _run_train),
    "demo": ("the embedded default search (NB201 on digits, 16 trials)", _configure_demo, _run_demo),
    "embed": ("Jacobian contrastive embeddings of a space's architectures", _configure_embed, _run_embed),
    "predict": ("score your own PyTorch model against a reference space", _configure_predict, _run_predict),
    "report": ("write an experiment's report.html: plots, trials, best cells, settings", _configure_report, _run_report),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of ``command`` only (the others list their name and help)."""
    parser = argparse.ArgumentParser(prog="raynas", description="Neural Architecture Search on Ray Tune.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        command_parser = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_Help
        )
        if name == command:
            configure(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    run = COMMANDS[args.command][2]
    try:
        return run(args)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as err:
        print(f"raynas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from raynas.experiment import SearchFailed, StorageFailed  # already imported by the search that raised

        if not isinstance(err, (SearchFailed, StorageFailed)):
            raise
        print(f"raynas {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
