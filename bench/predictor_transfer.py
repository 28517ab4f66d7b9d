"""Cross-space transfer of the computation-graph predictor to NAS-Bench-201.

The CG predictor is fitted on the NB101 and NB301 tables (labels rank-normalised per space)
plus 0, 50 or 100 labelled NB201 architectures, and ranks NB201 architectures it was not
fitted on: Spearman rank correlation (scipy) with CIFAR-10 accuracy (the mean over the rows
of each canonical class), over several seeds; beside it, the same scores smoothed along
NB201's moves (:func:`predictors.smoothing.smooth_over_moves`, defaults).  With
``--pretrain-per-space N`` the encoder is first pre-trained contrastively on N unlabelled
architectures of each space; with
``--ensemble N`` each predictor is an :class:`~predictors.ensemble.EnsemblePredictor` of N seeds.  Also reported:
tracing time per graph, pre-training and fitting wall time, inference throughput.

Side by side with the zero-cost proxies: on the 724 architectures of NASLib's NB201 zero-cost
table (labelled draws never come from them), the SRCC of the CG predictor and of every
NASLib proxy column against that table's ``val_accuracy``, and with ``--stack naswot,jacov``
the CG predictor stacked with our own proxies (:class:`predictors.stacking.StackedPredictor`).

    python bench/predictor_transfer.py --benchmarks ../shared/benchmarks --seeds 3
    python bench/predictor_transfer.py --n-eval 2000 --pretrain-per-space 500   # quicker subset
    python bench/predictor_transfer.py --labels 50,100 --stack-embeddings nb201_emb.parquet   # + a GP on embeddings
    python bench/predictor_transfer.py --labels 100 --ensemble 5 --stack-embeddings nb201_emb.parquet --stack-onehot
    python bench/predictor_transfer.py --labels 100 --ensemble 5 --stack-embeddings syn.parquet --stack-onehot \
        --stack-weights 1,2,1   # synthetic-input embeddings weighted twice
    python bench/predictor_transfer.py --labels 0 --ensemble 5 --nb301-surrogate yahpo_nb301_v2 --nb301-samples 1500

``--target nb101|nb201|darts|all`` is the per-space protocol of the CG paper instead: each target
space's NASLib table (NB101 500, NB201 724, NB301 725 architectures) is ranked by a predictor
fitted on the other two tables plus 0 / 50 / 100 labels drawn from the target's table, beside
synflow, jacov, nwot and params on the same held-out architectures; with
``--pretrain-per-space N`` each seed also pre-trains one encoder contrastively (N unlabelled
architectures of every space) and the table shows the fit with and without it.

    python bench/predictor_transfer.py --target all --seeds 0,1,2 --pretrain-per-space 500
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

import pyarrow.parquet as pq

from predictors.cg import CGPredictor
from predictors.cg_data import GraphCache, GraphReader
from predictors.embedding_gp import EmbeddingGPPredictor
from predictors.embeddings import ArchEmbeddings
from predictors.ensemble import EnsemblePredictor
from predictors.smoothing import ALPHA, STEPS, move_graph, smooth_over_moves
from predictors.stacking import StackedPredictor
from predictors.zero_cost import ZeroCostPredictor
from raynas.benchmarks import TabularBenchmark
from search_spaces import get_space

SOURCES = (("nb101", "nb101_zc_naslib_subset.parquet"), ("darts", "nb301_zc_naslib_subset.parquet"))
ZC_TABLE = "nb201_zc_naslib_subset.parquet"
SPACE_TABLES = {"nb101": "nb101_zc_naslib_subset.parquet", "nb201": ZC_TABLE, "darts": "nb301_zc_naslib_subset.parquet"}
SPACE_NAMES = {"nb101": "NB101", "nb201": "NB201", "darts": "NB301"}
TABLE_PROXIES = ("synflow", "jacov", "nwot", "params")
NASLIB_PROXIES = ("nwot", "jacov", "synflow", "snip", "grad_norm", "fisher", "grasp", "epe_nas", "flops", "params")


class CachedProxy(ZeroCostPredictor):
    """A zero-cost proxy that scores each architecture once (seeds share the evaluation set)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scores: dict = {}

    def predict(self, archs):
        missing = [a for a in dict.fromkeys(archs) if a not in self._scores]
        if missing:
            self._scores.update(zip(missing, super().predict(missing)[0]))
        mean = np.array([self._scores[a] for a in archs])
        return mean, np.zeros_like(mean)


def naslib_subset(path: Path, dataset: str) -> tuple[list, np.ndarray, dict[str, np.ndarray]]:
    """NASLib's NB201 zero-cost rows of ``dataset``: archs, val_accuracy, proxy columns."""
    table = pq.read_table(path).to_pandas()
    table = table[table["dataset"] == dataset]
    space = get_space("nb201")
    archs = [space.parse(a) for a in table["arch_str"]]
    return archs, table["val_accuracy"].to_numpy(), {k: table[k].to_numpy() for k in NASLIB_PROXIES if k in table}


def nb201_classes(path: Path, dataset: str) -> tuple[list, np.ndarray, np.ndarray]:
    """One arch per canonical NB201 class, with its class-mean valid and test accuracy."""
    table = TabularBenchmark.from_parquet(path, "nb201", dataset)
    valid, test = table.column("valid"), table.column("test")
    classes: dict[str, list[int]] = {}
    for row, arch in enumerate(table.archs):
        classes.setdefault(arch.key, []).append(row)
    archs = [table.archs[rows[0]] for rows in classes.values()]
    return archs, np.array([valid[r].mean() for r in classes.values()]), np.array([test[r].mean() for r in classes.values()])


def timed_trace(reader: GraphReader, archs: list) -> str:
    """Seconds per graph to trace those of ``archs`` that ``reader``'s cache lacks."""
    before = len(reader.cache)
    start = time.perf_counter()
    reader.prepare(archs)
    traced = len(reader.cache) - before
    return f"{(time.perf_counter() - start) / traced:.3f}" if traced else "cached"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", default="../shared/benchmarks", help="folder with the NB101/NB301/NB201 tables")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--n-eval", type=int, default=0, help="random NB201 classes to rank (0: all)")
    parser.add_argument("--labels", default="0,50,100", help="NB201 labelled archs per setting")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (label draws and initialisations)")
    parser.add_argument("--pretrain-per-space", type=int, default=0, help="unlabelled archs per space (0: no pre-training)")
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--conv", default="gat")
    parser.add_argument("--loss", default="pairwise")
    parser.add_argument("--label-norm", default="rank")
    parser.add_argument("--batching", default="stratified")
    parser.add_argument("--nb301-surrogate", default=None, metavar="DIR",
                        help="YAHPO Gym's nb301 folder: label the NB301 source (its table's cells and --nb301-samples "
                             "more) with that surrogate instead of the table's values")  # fmt: skip
    parser.add_argument("--nb301-samples", type=int, default=0, help="random DARTS cells added to the NB301 source")
    parser.add_argument("--target-share", type=float, default=1.0, help="NB201's share of a stratified batch vs a table's")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cache-dir", default=None, help="keep traced graphs here between runs")
    parser.add_argument("--pretrained", default=None, help="saved pre-trained predictor: loaded if present, else written")
    parser.add_argument("--use-ray", default="false", choices=("auto", "true", "false"))
    parser.add_argument("--ensemble", type=int, default=1, help="members per predictor (seeds seed*N .. seed*N+N-1)")
    parser.add_argument("--stack", default="", help="our zero-cost proxies to stack with the CG predictor, e.g. naswot,jacov")
    parser.add_argument("--stack-embeddings", default="",
                        help="NB201 embedding tables, comma-separated: stack a GP on each (fitted on the NB201 labels)")  # fmt: skip
    parser.add_argument("--stack-onehot", action="store_true", help="also stack a GP on the cells' one-hot encoding (fitted on the NB201 labels)")
    parser.add_argument("--stack-weights", default=None, help="stacking weights, CG first, e.g. 3,1")
    parser.add_argument("--target", default="nb201-all", choices=("nb201-all", *SPACE_TABLES, "all"),
                        help="nb201-all: rank every NB201 class (sources NB101 + NB301); a space or all: the per-space "
                             "protocol on the NASLib tables")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    use_ray = {"auto": "auto", "true": True, "false": False}[args.use_ray]
    root = Path(args.benchmarks)
    reader = GraphReader(cache=GraphCache(args.cache_dir, max_items=50_000), use_ray=use_ray)
    if args.target != "nb201-all":
        settings = dict(conv=args.conv, loss=args.loss, label_norm=args.label_norm, batching=args.batching,
                        epochs=args.epochs, pretrain_epochs=args.pretrain_epochs, use_ray=use_ray)  # fmt: skip
        targets = list(SPACE_TABLES) if args.target == "all" else [args.target]
        per_space_table(root, args, reader, settings, targets)
        return

    source_archs, source_y = [], []
    trace_s: dict[str, str] = {}
    for space, name in SOURCES:
        table = TabularBenchmark.from_parquet(root / name, space, args.dataset)
        space_archs, space_y = list(table.archs), list(table.column("valid"))
        if space == "darts" and args.nb301_surrogate:
            space_archs, space_y = surrogate_labelled(args.nb301_surrogate, space_archs, args.nb301_samples)
        trace_s[space] = timed_trace(reader, space_archs)
        source_archs += space_archs
        source_y += space_y
    archs, valid, test = nb201_classes(root / "nb201_all.parquet", args.dataset)
    if args.n_eval:
        keep = np.sort(np.random.default_rng(12345).choice(len(archs), size=min(args.n_eval, len(archs)), replace=False))
        archs, valid, test = [archs[i] for i in keep], valid[keep], test[keep]
    moves = move_graph(archs)
    zc_archs, zc_y, zc_cols = naslib_subset(root / ZC_TABLE, args.dataset)
    trace_s["nb201"] = timed_trace(reader, archs + zc_archs)
    zc_keys = {a.key for a in zc_archs}
    pool = np.array([i for i, a in enumerate(archs) if a.key not in zc_keys])
    proxies = [CachedProxy(name, space="nb201", dataset="digits", batch_size=32, build={"C": 16, "N": 5})
               for name in args.stack.split(",") if name]  # fmt: skip

    settings = dict(conv=args.conv, loss=args.loss, label_norm=args.label_norm, batching=args.batching,
                    epochs=args.epochs, pretrain_epochs=args.pretrain_epochs, use_ray=use_ray)  # fmt: skip
    pretrain_s = 0.0
    pretrained = None
    if args.pretrained and Path(args.pretrained).is_dir():
        pretrained = CGPredictor.load(args.pretrained)
    elif args.pretrain_per_space:
        start = time.perf_counter()
        pretrained = CGPredictor(**settings)
        pretrained.reader = reader
        pretrained.pretrain(n_per_space=args.pretrain_per_space)
        pretrain_s = time.perf_counter() - start
        if args.pretrained:
            pretrained.save(args.pretrained)

    tables = {path: ArchEmbeddings.from_parquet(path, "nb201") for path in args.stack_embeddings.split(",") if path}
    # the stack's learning members by name: a fresh GP per fit, on the NB201 labels only
    learners = {f"GP on {Path(path).name}": partial(EmbeddingGPPredictor, table) for path, table in tables.items()}
    if args.stack_onehot:
        learners["one-hot GP"] = partial(EmbeddingGPPredictor, get_space("nb201"))

    def weights(members: int) -> list[float] | None:
        if not args.stack_weights:
            return None
        given = [float(w) for w in args.stack_weights.split(",")]
        return given[: members + 1] if len(given) > members else None

    seeds = [int(v) for v in args.seeds.split(",")]
    rows = []
    for n_labels in (int(v) for v in args.labels.split(",")):
        results = []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            chosen = rng.choice(pool, size=n_labels, replace=False) if n_labels else np.array([], int)
            held_out = np.setdiff1d(np.arange(len(archs)), chosen)
            def member(member_seed: int) -> CGPredictor:
                model = CGPredictor(**settings, seed=member_seed)
                model.reader = reader
                if pretrained is not None:
                    model.pretrained_state_ = pretrained.pretrained_state_
                return model

            members = [seed * args.ensemble + k for k in range(args.ensemble)]
            model = EnsemblePredictor(member, members) if args.ensemble > 1 else member(seed)
            start = time.perf_counter()
            share = {"nb201": args.target_share} if n_labels and args.target_share != 1.0 else None
            stacked_with = proxies + ([make() for make in learners.values()] if n_labels else [])
            stack = StackedPredictor(model, "nb201", stacked_with, weights=weights(len(stacked_with))) if stacked_with else None
            items, labels = source_archs + [archs[i] for i in chosen], source_y + list(valid[chosen])
            (stack or model).fit(items, labels, group_share=share)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            every, _ = model.predict(archs)  # the labelled classes too: their neighbours' smoothing reads them
            rate = len(archs) / (time.perf_counter() - start)
            mean = every[held_out]
            smoothed = smooth_over_moves(every, archs, graph=moves)[held_out]
            on_zc = spearmanr(model.predict(zc_archs)[0], zc_y)[0]
            stacked = np.nan if stack is None else spearmanr(stack.predict(zc_archs)[0], zc_y)[0]
            stacked_all = smoothed_stack = np.nan  # on every held-out class: only without zero-cost proxies (too slow for 8,765)
            if stack is not None and not proxies:
                every_stacked = stack.predict(archs)[0]
                stacked_all = spearmanr(every_stacked[held_out], valid[held_out])[0]
                smoothed_stack = spearmanr(smooth_over_moves(every_stacked, archs, graph=moves)[held_out], valid[held_out])[0]
            results.append((spearmanr(mean, valid[held_out])[0], spearmanr(mean, test[held_out])[0], fit_s, rate,
                            on_zc, stacked, stacked_all, spearmanr(smoothed, valid[held_out])[0], smoothed_stack))  # fmt: skip
            print(f"labels {n_labels} seed {seed}: SRCC valid {results[-1][0]:.3f} test {results[-1][1]:.3f}, "
                  f"smoothed {results[-1][7]:.3f}, stacked {stacked_all:.3f}, smoothed {smoothed_stack:.3f}, "
                  f"NASLib subset {on_zc:.3f}, stacked {stacked:.3f}, fit {fit_s:.0f} s, {rate:.0f} archs/s", flush=True)
        r = np.array(results)
        rows.append((n_labels, r))

    pre = "none"
    if pretrained is not None:
        pre = f"{', '.join(pretrained.pretrain_spaces_)}, {len(pretrained.pretrain_history_)} epochs"
    ensemble = f"ensembles of {args.ensemble}, " if args.ensemble > 1 else ""
    counts = Counter(a.space for a in source_archs)
    source_text = f"NB101 ({counts['nb101']}) + NB301 ({counts['darts']}) tables"
    if args.nb301_surrogate:
        source_text += " (NB301 labelled by YAHPO's surrogate)"
    print(f"\nCG predictor ({ensemble}{args.conv}, {args.loss} loss, {args.label_norm} labels per space, {args.batching} batches "
          f"(NB201 share {args.target_share:g}), "
          f"{args.epochs} epochs, pre-training: {pre}) "
          f"fitted on {source_text} + k NB201 labels; SRCC on {len(archs)} NB201 classes "
          f"({args.dataset}, class-mean accuracy; the k labelled ones excluded), mean ± std over seeds {seeds}\n")
    stacked_column = bool(learners) and not proxies
    if stacked_column:
        print(f"Stacked: the CG predictor with {' and '.join(learners)} fitted on the NB201 labels, "
              f"weights {args.stack_weights or 'equal'}\n")
    print(f"Smoothed: each class's score averaged along NB201's moves (alpha {ALPHA}, {STEPS} steps, "
          f"predictors.smoothing; no NB201 label used)\n")
    print("| NB201 labels | SRCC valid | smoothed | SRCC test | fit wall s | inference archs/s (cached graphs) |"
          + (" stacked SRCC valid | stacked, smoothed |" if stacked_column else ""))
    print("| --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if stacked_column else ""))
    spread = lambda column: f"{np.nanmean(column):.3f} ± {np.nanstd(column):.3f}"  # noqa: E731
    for n_labels, r in rows:
        print(f"| {n_labels} | {spread(r[:, 0])} | {spread(r[:, 7])} | {spread(r[:, 1])} "
              f"| {r[:, 2].mean():.0f} | {r[:, 3].mean():.0f} |"
              + (f" {spread(r[:, 6])} | {spread(r[:, 8])} |" if stacked_column else ""))
    print(f"\nOn the {len(zc_archs)} architectures of NASLib's NB201 zero-cost table (SRCC with its val_accuracy; "
          f"proxies need no labels)\n")
    print("| predictor | " + " | ".join(f"{n} NB201 labels" for n, _ in rows) + " |")
    print("| --- |" + " --- |" * len(rows))
    print("| CG predictor | " + " | ".join(f"{r[:, 4].mean():.3f} ± {r[:, 4].std():.3f}" for _, r in rows) + " |")
    if proxies or learners:
        names = "+".join([p.proxy for p in proxies] + list(learners))
        print(f"| CG + our {names} (stacked) | " + " | ".join(f"{r[:, 5].mean():.3f} ± {r[:, 5].std():.3f}" for _, r in rows) + " |")
    for name, column in zc_cols.items():
        print(f"| NASLib {name} | " + " | ".join(f"{spearmanr(column, zc_y)[0]:.3f}" for _ in rows) + " |")
    traced = ", ".join(f"{k} {v}" for k, v in trace_s.items())
    print(f"\ntracing s/graph (one process, reduced builds): {traced}; pre-training wall s: {pretrain_s:.0f}")


def space_table(root: Path, space: str, dataset: str) -> tuple[list, np.ndarray, dict[str, np.ndarray]]:
    """A NASLib table of ``space``: archs, valid accuracy, the proxy columns of :data:`TABLE_PROXIES` it has."""
    path = root / SPACE_TABLES[space]
    table = TabularBenchmark.from_parquet(path, space, dataset)
    raw = pq.read_table(path).to_pandas()
    if "dataset" in raw:
        raw = raw[raw["dataset"] == dataset]
    return table.archs, table.column("valid"), {k: raw[k].to_numpy() for k in TABLE_PROXIES if k in raw}


def surrogate_labelled(folder: str, archs: list, extra: int) -> tuple[list, list[float]]:
    """``archs`` plus ``extra`` random DARTS cells (seed 0, no repeats), all labelled by the
    NB301 surrogate: one labeller for the whole source, so its per-space ranks agree."""
    from raynas.nb301_surrogate import NB301Surrogate

    space, rng = get_space("darts"), np.random.default_rng(0)
    keys, archs = {a.key for a in archs}, list(archs)
    wanted = len(archs) + extra
    while len(archs) < wanted:
        arch = space.sample(rng)
        if arch.key not in keys:
            keys.add(arch.key)
            archs.append(arch)
    return archs, list(NB301Surrogate(folder).predict(archs))


def per_space_table(root: Path, args: argparse.Namespace, reader: GraphReader, settings: dict, targets: list[str]) -> None:
    """Each target space ranked by a CG predictor fitted on the other spaces' tables (+ target labels)."""
    tables = {space: space_table(root, space, args.dataset) for space in SPACE_TABLES}
    for space, (archs, _, _) in tables.items():
        print(f"tracing {space}: {timed_trace(reader, archs)} s/graph", flush=True)
    seeds = [int(v) for v in args.seeds.split(",")]
    label_counts = [int(v) for v in args.labels.split(",")]
    results: dict[tuple[str, int, str], list[float]] = {}
    proxies: dict[tuple[str, int, str], list[float]] = {}
    for seed in seeds:
        pretrained = None
        if args.pretrain_per_space:
            start = time.perf_counter()
            pretrained = CGPredictor(**settings, seed=seed)
            pretrained.reader = reader
            pretrained.pretrain(n_per_space=args.pretrain_per_space)
            print(f"seed {seed}: pre-trained on {', '.join(pretrained.pretrain_spaces_)} in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        for target in targets:
            archs, y, columns = tables[target]
            sources = [(a, v) for s, (aa, yy, _) in tables.items() if s != target for a, v in zip(aa, yy)]
            for n_labels in label_counts:
                chosen = np.random.default_rng(seed).choice(len(archs), size=n_labels, replace=False)
                held = np.setdiff1d(np.arange(len(archs)), chosen)
                for name, column in columns.items():
                    proxies.setdefault((target, n_labels, name), []).append(spearmanr(column[held], y[held])[0])
                variants = [("none", None)] + ([("pre-trained", pretrained)] if pretrained and n_labels in (0, 100) else [])
                for variant, pre in variants:
                    model = CGPredictor(**settings, seed=seed)
                    model.reader = reader
                    if pre is not None:
                        model.pretrained_state_ = pre.pretrained_state_
                    start = time.perf_counter()
                    model.fit([a for a, _ in sources] + [archs[i] for i in chosen], [v for _, v in sources] + list(y[chosen]))
                    srcc = spearmanr(model.predict([archs[i] for i in held])[0], y[held])[0]
                    results.setdefault((target, n_labels, variant), []).append(srcc)
                    print(f"{target} labels {n_labels} seed {seed} pre-training {variant}: SRCC {srcc:.3f} "
                          f"(fit {time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip

    def cell(values: list[float] | None) -> str:
        return "—" if not values else f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    sizes = ", ".join(f"{SPACE_NAMES[s]} {len(a)}" for s, (a, _, _) in tables.items())
    print(f"\nCG predictor ({args.conv}, {args.epochs} epochs) fitted on the other two spaces' NASLib tables ({sizes}) "
          f"+ k labels of the target's table; SRCC with {args.dataset} valid accuracy on the target's other "
          f"architectures, mean ± std over seeds {seeds}; the proxies on the same held-out architectures\n")
    pre = ["CG, pre-trained"] if args.pretrain_per_space else []
    print("| target | labels | CG | " + " | ".join(pre + list(TABLE_PROXIES)) + " |")
    print("| --- | --- | --- |" + " --- |" * (len(pre) + len(TABLE_PROXIES)))
    for target in targets:
        for n_labels in label_counts:
            cells = [cell(results.get((target, n_labels, "none")))]
            cells += [cell(results.get((target, n_labels, "pre-trained")))] if pre else []
            cells += [cell(proxies.get((target, n_labels, name))) for name in TABLE_PROXIES]
            print(f"| {SPACE_NAMES[target]} | {n_labels} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
