"""Real Ray Tune runs (one local Ray session for the module): stand-alone training on
digits with several searchers, failing trials, an interrupted and restored experiment,
and the CLI."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ray import tune

from conftest import REPO, benchmark_file
from raynas.cli import main as cli_main
from raynas.data import load_dataset
from raynas.trainables import StandaloneTrainable
from searchers import make_searcher
from search_spaces import get_space

SPACE = get_space("nb201")
TINY = {"space": "nb201", "dataset": "digits", "epochs": 1, "build": {"C": 8, "N": 1}}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _fit(searcher, digits, tmp_path, name, num_samples=3):
    tuner = tune.Tuner(
        tune.with_parameters(StandaloneTrainable, data=digits),
        param_space=TINY,
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=num_samples, metric="val_acc", mode="max", reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
    )
    return tuner.fit()


@pytest.mark.parametrize("name", ["rea", "tpe", "ax"])
def test_searcher_drives_standalone_training_on_digits(name, ray_session, digits, tmp_path):
    results = _fit(make_searcher(name, SPACE, "val_acc", "max", seed=0), digits, tmp_path, name)
    assert len(results) == 3 and results.num_errors == 0
    archs = [r.metrics["arch"] for r in results]
    assert len({SPACE.parse(a).key for a in archs}) == 3
    best = results.get_best_result()
    assert 0 < best.metrics["val_acc"] <= 100 and best.metrics["epoch"] == 1


def test_a_diverging_trial_errors_and_the_experiment_goes_on(ray_session, digits, tmp_path):
    arch = SPACE.encode(SPACE.from_index(6111))
    tuner = tune.Tuner(
        tune.with_parameters(StandaloneTrainable, data=digits),
        param_space={**TINY, **arch, "epochs": 3, "grad_clip": 0, "lr": tune.grid_search([0.05, 1e30])},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="nan", verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 1 and results.num_terminated == 1
    assert "non-finite training loss" in str(results.errors[0])


def _finished_trials(folder: Path, epochs: int = 2) -> int:
    """Trials that trained all their epochs, by the trials table raynas rewrites as trials end.
    (Tune's own ``result.json`` files reach the folder only at its experiment snapshots, whose
    period grows on a loaded machine: polling them raced with the trials, the flaky failure.)"""
    try:
        return pq.read_table(folder / "trials.parquet", columns=["epoch"]).column("epoch").to_pylist().count(epochs)
    except (OSError, KeyError, pa.ArrowInvalid):  # not written yet
        return 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_search_resumes_to_the_requested_trials(stop, ray_session, tmp_path, capsys):
    """The driver is interrupted (SIGINT: Tune saves and stops; SIGKILL: nothing saved at
    the end) after 2 of 6 trials; ``raynas search --resume DIR`` alone, with none of the
    first run's flags, finishes exactly the 6 trials with the first run's settings (dataset,
    metric train_loss to minimise), the restored searcher proposing no architecture twice."""
    address = ray_session.get_runtime_context().gcs_address
    command = [
        sys.executable, "-m", "raynas.cli", "search", "--space", "nb201", "--searcher", "rea",
        "--dataset", "synthetic:4096", "--num-samples", "6", "--epochs", "2", "--max-concurrent", "1",
        "--storage", str(tmp_path), "--name", "interrupted", "--address", address, "--seed", "1",
        "--set", 'build={"C": 4, "N": 1}', "--metric", "train_loss",
    ]  # fmt: skip
    driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "interrupted"
    deadline = time.time() + 240
    while _finished_trials(folder) < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
    assert driver.poll() is None, "the driver ended before it could be interrupted"
    driver.send_signal(stop)
    driver.wait(timeout=120)
    assert 2 <= _finished_trials(folder) < 6
    # a killed driver's trial actors live on until Ray reaps its job; resuming while they
    # still write into the trial folders would race with them (a user resumes later)
    deadline = time.time() + 60
    while ray_session.available_resources().get("CPU", 0) < ray_session.cluster_resources()["CPU"]:
        assert time.time() < deadline, "the interrupted driver's trials still hold CPUs after 60 s"
        time.sleep(0.5)

    assert cli_main(["search", "--resume", str(folder), "--address", address]) == 0
    table = pq.read_table(folder / "trials.parquet").to_pylist()
    assert len(table) == 6 and all(r["status"] == "TERMINATED" for r in table), [r["error"] for r in table]
    assert len({SPACE.parse(r["arch"]).key for r in table}) == 6
    assert all(r["epoch"] == 2 and json.loads(r["config"])["dataset"] == "synthetic:4096" for r in table)
    data = load_dataset("synthetic:4096")  # 3 channels, 4 classes: digits would give other sizes
    for row in table:
        model = SPACE.build(SPACE.parse(row["arch"]), num_classes=data.num_classes, in_shape=data.in_shape, C=4, N=1)
        assert row["params"] == sum(p.numel() for p in model.parameters())
    best = min(table, key=lambda r: r["train_loss"])
    assert f"best architecture  {best['arch']}" in capsys.readouterr().out


def test_cli_search_on_a_benchmark_table_writes_results(ray_session, tmp_path, capsys):
    table = benchmark_file("nb201_all.parquet")
    code = cli_main([
        "search", "--trainable", "benchmark", "--benchmark", str(table), "--dataset", "cifar10",
        "--searcher", "rea", "--num-samples", "12", "--storage", str(tmp_path), "--name", "cli",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "best architecture  |" in out
    trials = pq.read_table(tmp_path / "cli" / "trials.parquet").to_pylist()
    assert len(trials) == 12 and {r["epoch"] for r in trials} == {200}
    assert all(r["simulated_time_s"] > 0 and "edge_1_0" in json.loads(r["config"]) for r in trials)
    assert (tmp_path / "cli" / "search_trajectory.png").stat().st_size > 10_000


def test_cli_rejects_bad_arguments_with_a_message(ray_session, capsys):
    assert cli_main(["search", "--trainable", "benchmark"]) == 2
    assert "needs --benchmark PATH" in capsys.readouterr().err
    assert cli_main(["search", "--searcher", "bogus", "--num-samples", "1"]) == 2
    assert "unknown searcher 'bogus'" in capsys.readouterr().err
    assert cli_main(["search", "--set", "lr"]) == 2
    assert "--set takes KEY=VALUE" in capsys.readouterr().err


def _readme_examples() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = text.split("```python\n")[1:]
    return [b.split("```")[0] for b in blocks if "tune.Tuner(" in b or "tune.run(" in b]


def test_readme_has_a_tuner_and_a_tune_run_example():
    examples = _readme_examples()
    assert any("tune.Tuner(" in e for e in examples) and any("tune.run(" in e for e in examples)


@pytest.mark.parametrize("index", [0, 1])
def test_readme_example_runs(index, ray_session, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_examples()[index], f"README example {index}", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    printed = [line.split() for line in lines if line.startswith("|") and line.count(" ") == 1]
    assert printed, "the example printed no 'arch val_acc' line"
    arch, value = printed[-1]
    assert SPACE.is_valid(SPACE.parse(arch)) and 0 <= float(value) <= 100
