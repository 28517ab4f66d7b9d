"""One NAS experiment through Ray Tune: what ``raynas search`` and ``raynas demo`` run.

It only wires raynas parts into a plain ``tune.Tuner`` (searcher, trainable with shared
data, checkpointing, reuse of actors) and writes the results a person wants to read;
Ray does the scheduling, fault tolerance and distribution.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from raynas import storage
from raynas.io import atomic_write, read_parquet, write_parquet_atomic
from raynas.parallel import ray_session
from raynas.results import pareto_table, plot_pareto, plot_trajectory, trials_table, with_earlier
from raynas.benchmarks import check_table
from raynas.data_specs import check_dataset
from raynas.trainables.registry import TrainableInfo, trainable_info
from raynas.trainables.settings import key_names
from search_spaces import SearchSpace, as_space
from searchers.registry import available_searchers

if TYPE_CHECKING:
    import pyarrow as pa

#: the experiment's SearchSettings, written beside Tune's files so ``--resume DIR`` alone suffices
SETTINGS_FILE = "raynas_settings.json"


@dataclass
class SearchSettings:
    """Everything that defines an experiment (the CLI flags, one to one).

    ``space`` is a space's name, ``path/to/file.py:NAME`` / ``package.module:NAME``, or a
    space object; ``dataset`` None means digits, or for a benchmark table its only dataset.
    """

    space: str | SearchSpace = "nb201"
    searcher: str = "rea"
    trainable: str = "standalone"
    dataset: str | None = None
    benchmark: str | None = None
    metric: str | None = None  # None: the trainable's default metric
    mode: str | None = None  # None: the mode the trainable declares for the metric
    num_samples: int = 16
    max_concurrent: int = 2
    time_budget_s: float | None = None  # stop starting and running trials after this long (Tune's time_budget_s)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions share a GPU: 0.5 runs two trials on each
    epochs: int = 4
    seed: int = 0
    storage: str = "~/ray_results"
    name: str | None = None
    address: str | None = None
    max_failures: int = 2
    verbose: bool = False  # Ray's own output (trial tables, worker logs) instead of one progress line
    checkpoint_every_s: float = 30.0  # a trial checkpoints when this long has passed (0: every epoch) and at its end
    objectives: dict[str, str] = field(default_factory=dict)  # {"val_acc": "max", "params": "min"}
    searcher_options: dict[str, Any] = field(default_factory=dict)
    trainer_options: dict[str, Any] = field(default_factory=dict)
    scheduler_options: dict[str, Any] = field(default_factory=dict)  # of the scheduler a searcher brings (bohb's HyperBand)

    def __post_init__(self) -> None:
        info = trainable_info(self.trainable)
        self.metric = self.metric or info.metric
        self.mode = self.mode or info.mode(self.metric)

    @property
    def trainable_info(self) -> TrainableInfo:
        return trainable_info(self.trainable)

    def check(self) -> "SearchSettings":
        """Everything that can be checked before Ray starts (names, files, trainer keys, the
        metric); the settings with the space object and the dataset resolved."""
        info = self.trainable_info
        for metric in (self.metric, *self.objectives):
            info.check_metric(metric)
        if info.searches_archs and self.searcher not in available_searchers():
            close = difflib.get_close_matches(self.searcher, available_searchers(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown searcher {self.searcher!r}; {hint}available: {available_searchers()}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.num_samples < 1 or self.max_concurrent < 1:
            raise ValueError("num_samples and max_concurrent must be >= 1")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be > 0 seconds (or None: no limit), got {self.time_budget_s}")
        if not self.checkpoint_every_s >= 0:
            raise ValueError(f"checkpoint_every_s must be >= 0 (0: every epoch), got {self.checkpoint_every_s}")
        if self.max_failures < -1:
            raise ValueError(f"max_failures must be >= 0 (or -1: restart without limit), got {self.max_failures}")
        if self.objectives:
            bad = {k: v for k, v in self.objectives.items() if v not in ("max", "min")}
            if len(self.objectives) < 2 or bad:
                raise ValueError(
                    f"objectives must name two or more metrics, each 'max' or 'min', got {self.objectives}"
                )
            if (self.metric, self.mode) != next(iter(self.objectives.items())):
                raise ValueError(
                    f"metric/mode ({self.metric}, {self.mode}) must be the first objective {next(iter(self.objectives.items()))}"
                )
        self.check_resources()
        self.scheduler()  # a searcher's scheduler with bad options fails here, before Ray starts
        dataset = self.dataset
        if info.shared != "benchmark":  # before the space: a space of the user's own imports what its file does
            dataset = dataset or "digits"
            check_dataset(dataset)
            info.check_options({**self.trial_constants(self.space, dataset), **self.trainer_options})
        space = as_space(self.space)
        info.check_space(space.name)
        if info.shared == "benchmark":
            if not self.benchmark:
                raise ValueError(f"--trainable {self.trainable} needs --benchmark PATH (a Parquet table)")
            dataset = check_table(self.benchmark, space, dataset)
            info.check_options({**self.trial_constants(space, dataset), **self.trainer_options})
        trainer_options = self.trainer_options
        default_build = getattr(space, "default_build", None)  # e.g. nago: a fixed width when size is an objective
        if default_build is not None and "build" not in trainer_options and (build := default_build(self.objectives)):
            trainer_options = {**trainer_options, "build": build}
        return dataclasses.replace(self, space=space, dataset=dataset, trainer_options=trainer_options)

    def scheduler(self) -> Any:
        """The Tune scheduler the searcher comes with (``bohb``: HyperBand over budgets in epochs,
        up to ``epochs``), or None; Tune tells it the metric and mode."""
        if self.searcher != "bohb" or not self.trainable_info.searches_archs:
            if self.scheduler_options:
                raise ValueError(f"scheduler options {self.scheduler_options} need --searcher bohb (the only "
                                 f"searcher that brings a scheduler), not {self.searcher!r}")  # fmt: skip
            return None
        from searchers.bohb import bohb_scheduler

        return bohb_scheduler(self.epochs, **self.scheduler_options)

    def check_resources(self) -> None:
        """Resources Ray can grant, and a device the trials will see (Ray hides the GPUs from
        a trial that did not ask for one, so ``device=cuda`` without GPUs fails in every trial)."""
        cpus, gpus = self.cpus_per_trial, self.gpus_per_trial
        if not cpus > 0 or not gpus >= 0:
            raise ValueError(f"cpus_per_trial must be > 0 and gpus_per_trial >= 0, got {cpus} and {gpus}")
        if gpus > 1 and gpus != int(gpus):
            raise ValueError(f"gpus_per_trial above 1 must be a whole number (Ray shares only single GPUs), got {gpus}")
        device = str(self.trainer_options.get("device", "auto"))
        if device.startswith("cuda") and gpus == 0:
            raise ValueError(f"device {device!r} needs gpus_per_trial > 0 (--gpus-per-trial): Ray shows a trial "
                             "only the GPUs it asked for")  # fmt: skip
        if gpus and self.address is None:
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"gpus_per_trial={gpus}, but this machine has no CUDA GPU (torch sees none); run "
                                 "on a GPU machine or join a cluster with GPU workers (--address)")  # fmt: skip

    def trial_resources(self) -> dict[str, float]:
        """What each trial asks Ray for (``tune.with_resources``)."""
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}

    def trial_constants(self, space: SearchSpace | str, dataset: str) -> dict[str, Any]:
        """The trainer keys every trial gets besides ``trainer_options``."""
        config: dict[str, Any] = {"space": getattr(space, "name", space), "dataset": dataset, "seed": self.seed}
        if self.trainable_info.shared == "benchmark":
            config["benchmark"] = str(Path(self.benchmark).expanduser().resolve())
        else:
            config["epochs"] = self.epochs
            if self.benchmark and "benchmark" in key_names(self.trainable_info.settings):
                config["benchmark"] = str(Path(self.benchmark).expanduser().resolve())  # scored on a table (differentiable)
        return config

    def to_json(self) -> str:
        """The settings as JSON (a space object by its name)."""
        values = dataclasses.asdict(dataclasses.replace(self, space=getattr(self.space, "name", self.space)))
        return json.dumps(values, indent=1)  # in field order: the objectives' order is meaningful


class SearchFailed(RuntimeError):
    """Every trial of a search failed; the message gives the first trial's cause."""


class StorageFailed(RuntimeError):
    """The experiment folder could not be written (a full disk, a read-only mount)."""


class DamagedState(ValueError):
    """Ray Tune's saved state of an experiment is cut short (its disk filled)."""


@dataclass
class SearchOutcome:
    experiment_dir: Path
    trials_path: Path
    plot_path: Path | None
    best_arch: str | None
    best_metrics: dict[str, Any]
    num_trials: int
    num_errors: int = 0
    first_error: str | None = None
    pareto_path: Path | None = None
    pareto_plot_path: Path | None = None
    pareto_front: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None


def _shared_input(settings: SearchSettings) -> dict[str, Any]:
    """The trainable's large read-only input (a dataset or a benchmark table), loaded in the
    driver before Ray starts, so a damaged file is reported at once."""
    if settings.trainable_info.shared == "benchmark":
        from raynas.benchmarks import TabularBenchmark

        return {"benchmark": TabularBenchmark.from_parquet(settings.benchmark, settings.space, settings.dataset)}
    from raynas.data import load_dataset

    return {"data": load_dataset(settings.dataset)}


def _param_space(settings: SearchSettings) -> dict[str, Any]:
    """Trainer constants (the space by name: the object itself reaches the trials through
    ``tune.with_parameters``); the searcher supplies the architecture keys.  A trainable that
    trains the whole space in every trial (a supernet) runs one trial per seed instead."""
    from ray import tune

    info = settings.trainable_info
    config = settings.trial_constants(settings.space, settings.dataset)
    if not info.searches_archs:
        config["seed"] = tune.grid_search([settings.seed + i for i in range(settings.num_samples)])
    return {**config, **settings.trainer_options}


def _note_single_objective(settings: SearchSettings) -> None:
    """Say so when the searcher optimises only the first of several objectives: the Pareto
    table is still drawn, but from trials chosen for one objective."""
    if not (settings.objectives and settings.trainable_info.searches_archs):
        return
    from searchers import searches_objectives

    if not searches_objectives(settings.searcher):
        print(f"raynas: {settings.searcher} searches {settings.metric} alone; the Pareto front of "
              f"{', '.join(settings.objectives)} is drawn from its trials (--searcher ax searches every objective)",
              file=sys.stderr)  # fmt: skip


def _check_fits_data(settings: SearchSettings, data: Any) -> None:
    """Refuse, before Ray starts, trainer keys that only the dataset's images show wrong."""
    if data is not None and settings.trainer_options.get("cutout"):
        from raynas.images import cutout_pixels

        cutout_pixels(settings.trainer_options["cutout"], data.in_shape)


def _searcher(settings: SearchSettings, data: Any = None) -> Any:
    """The searcher proposing each trial's architecture (None: the trainable needs none);
    ``data``, the trials' dataset, gives the shape of the networks they build."""
    if not settings.trainable_info.searches_archs:
        return None
    from searchers import make_searcher

    model = None
    if data is not None:
        model = {"num_classes": data.num_classes, "in_shape": data.in_shape, "build": settings.trainer_options.get("build", {})}
    return make_searcher(
        settings.searcher, settings.space, settings.metric, settings.mode, settings.seed,
        budget=settings.num_samples, objectives=settings.objectives or None, model=model, **settings.searcher_options,
    )  # fmt: skip


def save_settings(settings: SearchSettings, experiment_dir: str | Path) -> str:
    """Write ``settings`` as JSON into the experiment folder, a local path or a URI
    (atomically: a crash leaves the old file or the new one)."""
    text = settings.to_json()
    local = local_folder(experiment_dir)
    atomic_write(local / SETTINGS_FILE, text)
    if storage.is_uri(experiment_dir):
        storage.upload([local / SETTINGS_FILE], str(experiment_dir))
    return storage.join(str(experiment_dir), SETTINGS_FILE)


def load_settings(experiment_dir: str | Path) -> SearchSettings | None:
    """The settings an experiment was started with, or None for a folder without them."""
    text = storage.read_text(storage.join(str(experiment_dir), SETTINGS_FILE))
    return None if text is None else SearchSettings(**json.loads(text))


def check_resumable(experiment_dir: str | Path) -> None:
    """Refuse, before Ray starts, to restore a damaged Tune state: a truncated
    ``experiment_state-*.json`` (the disk filled while Tune wrote it) would restore an
    experiment that has forgotten its trials, and its end would overwrite the trials table
    (:class:`DamagedState`; :func:`run_search` then continues from the trials table)."""
    if storage.is_uri(experiment_dir):
        return  # read there by Tune itself; raynas checks local folders
    folder = Path(experiment_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"no experiment folder {folder} to resume")
    states = sorted(folder.glob("experiment_state-*.json"))
    if not states:
        raise FileNotFoundError(f"{folder} holds no Ray Tune experiment state (experiment_state-*.json) to resume")
    newest = states[-1]
    searcher = newest.with_name(newest.name.replace("experiment_state-", "searcher-state-")).with_suffix(".pkl")
    try:
        json.loads(newest.read_text())
        damaged = searcher.exists() and searcher.stat().st_size == 0
    except (OSError, ValueError):
        damaged = True
    if damaged:
        raise DamagedState(f"Ray Tune's experiment state in {folder} is damaged ({newest.name} or {searcher.name} "
                           "is cut short: was the disk full?)")  # fmt: skip


def _continued_from_table(folder: Path, saved: SearchSettings | None, damaged: DamagedState) -> pa.Table:
    """The trials table to continue a search from when Tune's state is damaged; without the
    search's settings or its trials table there is nothing to continue from (a ValueError)."""
    table_path = folder / "trials.parquet"
    if saved is None or not saved.trainable_info.searches_archs or not table_path.is_file():
        raise ValueError(f"cannot resume {folder}: {damaged}, and there is no trials table with settings to "
                         "continue from") from None  # fmt: skip
    return read_parquet(table_path, "trials table")


def _warm_start(searcher: Any, earlier: pa.Table, settings: SearchSettings) -> None:
    """Tell ``searcher`` the trials of ``earlier`` (a trials table), so it proposes none again."""
    for row in earlier.to_pylist():
        value: Any = row.get(settings.metric)
        usable = not row.get("error") and isinstance(value, (int, float)) and math.isfinite(value)
        if settings.objectives and usable:
            value = {k: row.get(k) for k in settings.objectives}
        searcher.add_evaluated_point(json.loads(row["config"]), value if usable else None, error=not usable)


def local_folder(experiment_dir: str | Path) -> Path:
    """Where raynas writes an experiment's own files on this machine: the folder itself, or
    for a URI ``~/ray_results/<experiment name>`` (copied up to the URI afterwards)."""
    if storage.is_uri(experiment_dir):
        return Path("~/ray_results").expanduser() / str(experiment_dir).rstrip("/").rsplit("/", 1)[-1]
    return Path(experiment_dir).expanduser()


def run_search(settings: SearchSettings, resume: str | None = None) -> SearchOutcome:
    """Run (or, with ``resume`` = an experiment dir, continue) a search and write its results.

    A resumed experiment keeps the settings it was started with (trainable, dataset, metric,
    ...; only ``address`` is taken from ``settings``): Tune restores the searcher and the
    trials, and the data the trainable gets must be the same as before.
    """
    earlier = None  # the trials table a search continues from when Tune's own state is damaged
    if resume:
        saved = load_settings(resume)
        try:
            check_resumable(resume)
        except DamagedState as damaged:
            folder = Path(resume).expanduser().resolve()
            earlier = _continued_from_table(folder, saved, damaged)
            print(f"raynas: {damaged}; continuing from the {earlier.num_rows} trials in its trials table, "
                  "in a new Tune run", file=sys.stderr)  # fmt: skip
            saved = dataclasses.replace(saved, storage=str(folder.parent), name=folder.name)
            resume = None
        if saved is not None:
            settings = dataclasses.replace(saved, address=settings.address, verbose=settings.verbose)
    settings = settings.check()
    _note_single_objective(settings)
    if not resume:  # named here, so the settings file can be written before Tune starts
        name = settings.name or f"{settings.space.name}-{settings.searcher}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        benchmark = str(Path(settings.benchmark).expanduser().resolve()) if settings.benchmark else None
        settings = dataclasses.replace(settings, name=name, benchmark=benchmark)
    from ray import tune

    if earlier is not None and earlier.num_rows >= settings.num_samples:  # every trial had finished
        outcome = summarise_table(earlier, storage.join(settings.storage, settings.name), settings.metric, settings.mode,
                                  settings.objectives)  # fmt: skip
        outcome.report_path = _report(outcome.experiment_dir, settings.space)
        return outcome
    shared = _shared_input(settings)
    _check_fits_data(settings, shared.get("data"))
    searcher = None if resume else _searcher(settings, shared.get("data"))
    if earlier is not None:
        _warm_start(searcher, earlier, settings)
    from raynas.live_table import LiveTrialsTable
    from raynas.search_progress import SearchProgress

    # Ray's start-up messages, trial tables and worker logs only when asked for; else one progress line
    progress = [] if settings.verbose else [SearchProgress(settings.num_samples, settings.metric, settings.mode)]
    live = None if resume else LiveTrialsTable(local_folder(storage.join(storage.resolve(settings.storage), settings.name)), earlier)
    with ray_session(settings.address, log_to_driver=settings.verbose, logging_level="info" if settings.verbose else "warning"):
        checkpoints = settings.trainable_info.checkpoint_frequency > 0
        if checkpoints:
            shared["checkpoint_every_s"] = settings.checkpoint_every_s
        trainable = tune.with_resources(
            tune.with_parameters(settings.trainable_info.cls, **shared, space=settings.space), settings.trial_resources()
        )
        if resume:
            tuner = tune.Tuner.restore(storage.resolve(resume), trainable=trainable, resume_errored=True)
        else:
            root = storage.resolve(settings.storage)
            tuner = tune.Tuner(
                trainable,
                param_space=_param_space(settings),
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=settings.scheduler(),
                    metric=settings.metric,
                    mode=settings.mode,
                    num_samples=settings.num_samples - (earlier.num_rows if earlier else 0) if searcher is not None else 1,
                    max_concurrent_trials=settings.max_concurrent,
                    time_budget_s=settings.time_budget_s,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=settings.name,
                    storage_path=root,
                    # by time (the trainable asks) and at the end; two kept per trial, so that a
                    # trial's checkpoint does not force Tune to snapshot the whole experiment
                    checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=checkpoints, num_to_keep=2),
                    failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                    verbose=2 if settings.verbose else 0,
                    callbacks=[*progress, live],
                ),
            )
            save_settings(settings, storage.join(root, settings.name))
        with _tune_output(settings.verbose):
            results = tuner.fit()
        try:
            silence = None if settings.time_budget_s is None else (
                f"the time budget ({settings.time_budget_s:g} s) ran out before any trial reported {settings.metric!r}"
            )  # fmt: skip
            outcome = summarise(results, settings.metric, settings.mode, settings.objectives, earlier, silence)
        except OSError as err:  # Tune logs its own failed writes and goes on; the tables cannot
            kept = f"; {live.path} holds the {live.rows} trials finished by its last write" if live is not None and live.rows else ""
            raise StorageFailed(f"could not write the results to {results.experiment_path}: {err} ({len(results)} "
                                f"trials ran{kept}; Ray Tune's own files there may be incomplete too)") from err  # fmt: skip
    outcome.report_path = _report(outcome.experiment_dir, settings.space)
    return outcome


def _report(experiment_dir: Path, space: Any) -> Path | None:
    """``report.html`` of the finished experiment; a report that cannot be drawn is a warning,
    never a lost search (its tables are written already)."""
    from raynas.report import write_report

    try:
        return write_report(experiment_dir, space=space if isinstance(space, SearchSpace) else None)
    except Exception as err:  # noqa: BLE001  (the search's results stand without the page)
        print(f"raynas: the report could not be written ({type(err).__name__}: {err})", file=sys.stderr)
        return None


@contextlib.contextmanager
def _tune_output(verbose: bool) -> Iterator[None]:
    """Tune's console output: its full reporter when ``verbose``, else nothing (the raynas
    progress line instead).  Tune's newer reporter prints an experiment header and a
    TensorBoard hint even at ``verbose=0``; its classic one prints nothing there."""
    if verbose:
        yield
        return
    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = before


def summarise(
    results: Any, metric: str, mode: str, objectives: dict[str, str] | None = None, earlier: pa.Table | None = None,
    silence: str | None = None,
) -> SearchOutcome:
    """Write ``trials.parquet`` and ``search_trajectory.png`` beside Tune's files; with
    several ``objectives`` also ``pareto.parquet`` and ``pareto_front.png``.  For storage at
    a URI they are written to :func:`local_folder` and copied up; the outcome names the
    local copies.  When no trial reported the metric, only the trials table is written and
    :class:`SearchFailed` says why the first trial failed.  ``earlier``: the trials of a run
    this one continued, first in the table.  ``silence``: why no trial may have reported without
    an error (a time budget), said instead of the bare fact."""
    return summarise_table(
        with_earlier(trials_table(results), earlier), results.experiment_path, metric, mode, objectives, silence
    )


def summarise_table(
    table: pa.Table, experiment_path: str, metric: str, mode: str, objectives: dict[str, str] | None = None,
    silence: str | None = None,
) -> SearchOutcome:
    """:func:`summarise` of a trials table (that of a finished run, or one continued)."""
    experiment_dir = local_folder(experiment_path)
    trials_path = write_parquet_atomic(table, experiment_dir / "trials.parquet")
    errors = [e for e in table.column("error").to_pylist() if e] if "error" in table.column_names else []
    values = table.column(metric).to_pylist() if metric in table.column_names else []
    values = [math.nan if v is None else float(v) for v in values]
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        if storage.is_uri(experiment_path):
            storage.upload([trials_path], experiment_path)
        cause = errors[0] if errors else silence or f"no trial reported {metric!r}"
        raise SearchFailed(f"all {table.num_rows} trials failed; the first: {cause} (trials table: {trials_path})")
    plot_path = plot_trajectory(values, metric, mode, experiment_dir / "search_trajectory.png")
    best_arch, best_metrics = None, {}
    if finite:
        pick = max(finite, key=lambda i: values[i] if mode == "max" else -values[i])
        row = table.slice(pick, 1).to_pylist()[0]
        best_arch = row.get("arch")
        keys = ("val_acc", "test_acc", "ssl_loss", "knn_acc", "params", "flops", "epoch", "trial_id")
        best_metrics = {k: row[k] for k in keys if row.get(k) is not None}
    outcome = SearchOutcome(
        experiment_dir, trials_path, plot_path, best_arch, best_metrics, table.num_rows, len(errors),
        errors[0] if errors else None,
    )  # fmt: skip
    if objectives:
        front = pareto_table(table, objectives)
        outcome.pareto_path = write_parquet_atomic(front, experiment_dir / "pareto.parquet")
        outcome.pareto_plot_path = plot_pareto(table, front, objectives, experiment_dir / "pareto_front.png")
        outcome.pareto_front = front.to_pylist()
    if storage.is_uri(experiment_path):
        written = [outcome.trials_path, outcome.plot_path, outcome.pareto_path, outcome.pareto_plot_path]
        storage.upload([p for p in written if p is not None], experiment_path)
    return outcome
