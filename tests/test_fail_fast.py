"""Mistakes are named in the driver before Ray starts (exit 2); a search whose every trial
fails says why and exits non-zero; a wrong ``data=`` object is refused in the driver."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from conftest import benchmark_file
from raynas.cli import main as cli_main

MISTAKES = [
    (["--set", "lr=abc"], "lr must be a number, got 'abc'"),
    (["--set", 'build={"C": 8, N: 1}'], "--set build: .* is not valid JSON"),
    (["--epochs", "-1"], "epochs must be > 0, got -1"),
    (["--set", "lrr=0.1"], "unknown trainer key 'lrr'; did you mean 'lr'"),
    (["--set", "ssl_method=pirl"], "'ssl_method' is a key of --trainable selfsup, not of 'standalone': add --trainable selfsup"),
    (["--set", "augment=maybe"], "augment must be true or false"),
    (["--space", "nb20"], "unknown search space 'nb20'; did you mean 'nb201'"),
    (["--space", "missing_file.py:SPACE"], "no such file: missing_file.py"),
    (["--searcher", "reaa"], "unknown searcher 'reaa'; did you mean 'rea'"),
    (["--metric", "val_ac"], "does not report 'val_ac'; did you mean 'val_acc'"),
    (["--trainable", "selfsup", "--metric", "val_acc"], "trains without labels"),
    (["--dataset", "cifar10:/no/such/folder"], "CIFAR-10 folder /no/such/folder does not exist"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--trainable", "sampled"], r"trains the spaces \['nago', 'nago-randwire', 'nago-darts-like'\], not 'nb201'"),
    (["--set", "device=gpu"], "device must be one of 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (["--set", "device=cuda"], "device 'cuda' needs gpus_per_trial > 0"),
    (["--set", "precision=fp8"], r"precision must be one of \['32', 'bf16', 'fp16'\]"),
    (["--gpus-per-trial", "1.5"], "gpus_per_trial above 1 must be a whole number"),
    (["--cpus-per-trial", "0"], "cpus_per_trial must be > 0"),
    (["--max-failures", "-2"], "max_failures must be >= 0"),
    (["--time-budget", "0"], "time_budget_s must be > 0 seconds"),
    (["--dataset", "imagefolder:/no/such/folder"], "/no/such/folder"),
    (["--searcher-opt", "max_params=10", "--searcher-opt", "max_resample=20"], r"meets the constraint \(at most 10 parameters\)"),
]


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if anything starts Ray."""
    import raynas.experiment

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the mistake was found")

    monkeypatch.setattr(raynas.experiment, "ray_session", refuse)


@pytest.mark.parametrize("flags, message", MISTAKES, ids=[" ".join(f) for f, _ in MISTAKES])
def test_cli_names_a_mistake_before_ray_starts(flags, message, no_ray, tmp_path, capsys):
    assert cli_main(["search", "--storage", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("raynas search: error: ")
    assert __import__("re").search(message, err), err


def test_the_driver_checks_without_importing_torch_or_ray_tune():
    """What makes the checks answer at once (about 0.6 s for ``raynas search --set lrr=0.1``
    against 6 s when the check imported torch and Ray Tune): a fresh interpreter runs every
    check of a wrong search and a right one, and neither package is loaded afterwards."""
    code = """
import sys
from raynas.cli import main
assert main(["search", "--set", "lrr=0.1"]) == 2
assert main(["search", "--space", "nb20"]) == 2
from raynas.experiment import SearchSettings
for space in ("nb201", "nb101", "darts", "darts-edges", "darts-csnas", "mobilenetv3", "nago"):
    SearchSettings(space=space, searcher="embedding-gp", trainer_options={"lr": 0.1}).check()
SearchSettings(space="nb201", trainable="supernet").check()
SearchSettings(space="nago", trainable="sampled").check()
SearchSettings(trainable="selfsup", dataset="synthetic:64").check()
print(sorted(m for m in ("torch", "ray.tune", "ray") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_the_declarations_match_what_they_declare():
    """The torch-free declarations the driver checks against name the real things."""
    from raynas.data_sources import LOADERS
    from raynas.data_specs import CHECKS, SOURCES
    from raynas.trainables import available_trainables, trainable_info
    from raynas.trainables.settings import SUPERNET_SPACES
    from raynas.trainables.supernet_net import SUPERNETS

    assert set(LOADERS) == set(SOURCES) and set(CHECKS) <= set(SOURCES)
    assert set(SUPERNETS) == set(SUPERNET_SPACES)
    for name in available_trainables():
        assert trainable_info(name).cls.__name__.endswith("Trainable")


def test_a_benchmark_table_of_another_space_names_the_right_one(no_ray, tmp_path, capsys):
    table = benchmark_file("nb101_zc_naslib_subset.parquet")
    assert cli_main(["search", "--trainable", "benchmark", "--benchmark", str(table), "--storage", str(tmp_path)]) == 2
    assert "does not hold nb201 architectures" in (err := capsys.readouterr().err) and "use --space nb101" in err


def test_the_benchmark_dataset_is_read_from_the_table():
    from raynas.experiment import SearchSettings

    settings = SearchSettings(trainable="benchmark", benchmark=str(benchmark_file("nb201_imagenet16.parquet"))).check()
    assert settings.dataset == "imagenet16"
    with pytest.raises(ValueError, match=r"datasets present: \['imagenet16'\]"):
        SearchSettings(trainable="benchmark", benchmark=str(benchmark_file("nb201_imagenet16.parquet")), dataset="cifar10").check()


def test_an_object_that_is_not_a_dataset_is_refused_in_the_driver():
    import torch
    from torch.utils.data import TensorDataset

    from raynas.trainables import StandaloneTrainable, with_data

    with pytest.raises(ValueError, match="a list is not a dataset raynas reads; give a spec string"):
        with_data(StandaloneTrainable, [torch.zeros(1, 8, 8)])
    with_data(StandaloneTrainable, TensorDataset(torch.zeros(4, 1, 8, 8), torch.zeros(4)))  # a torch dataset is one


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_gpus_on_a_machine_without_one_is_named(no_ray, tmp_path, capsys):
    assert cli_main(["search", "--storage", str(tmp_path), "--gpus-per-trial", "0.5"]) == 2
    assert "gpus_per_trial=0.5, but this machine has no CUDA GPU" in capsys.readouterr().err


def test_a_search_whose_every_trial_fails_says_why_and_exits_non_zero(ray_session, tmp_path, capsys):
    argv = ["search", "--num-samples", "2", "--epochs", "1", "--set", "lr=1e30", "--set", "grad_clip=0", "--max-failures", "0",
            "--set", 'build={"C": 4, "N": 1}', "--storage", str(tmp_path), "--name", "all-fail"]  # fmt: skip
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "all 2 trials failed; the first: FloatingPointError: non-finite training loss" in err
    rows = pq.read_table(tmp_path / "all-fail" / "trials.parquet").to_pylist()
    assert len(rows) == 2 and all(r["status"] == "ERROR" for r in rows)
    assert all(r["error"].startswith("FloatingPointError: non-finite training loss") and "\x1b" not in r["error"] for r in rows)
    assert not (tmp_path / "all-fail" / "search_trajectory.png").exists()
    assert json.loads((tmp_path / "all-fail" / "raynas_settings.json").read_text())["trainer_options"]["lr"] == 1e30


def test_a_time_budget_stops_the_search_and_keeps_what_the_stopped_trial_reported(ray_session, tmp_path, capsys):
    # 5000 epochs take minutes even at this size (200 took 9 s), so the 15 s budget must stop every trial
    argv = ["search", "--num-samples", "20", "--epochs", "5000", "--time-budget", "15", "--set", 'build={"C": 4, "N": 1}',
            "--set", "data_portion=0.2", "--storage", str(tmp_path), "--name", "budget"]  # fmt: skip
    assert cli_main(argv) == 0
    assert "the time budget (15 s) stopped the search after" in capsys.readouterr().out
    rows = pq.read_table(tmp_path / "budget" / "trials.parquet").to_pylist()
    reported = [r for r in rows if r["epoch"] is not None]
    assert 1 <= len(reported) <= len(rows) < 20 and all(1 <= r["epoch"] < 5000 and r["val_acc"] > 0 for r in reported)
    # a trial the budget stopped before its first report is kept, with nothing invented for it
    assert all(r["val_acc"] is None for r in rows if r["epoch"] is None)


def test_a_time_budget_that_ends_before_any_report_says_so(tmp_path):
    import pyarrow as pa

    from raynas.experiment import SearchFailed, summarise_table

    table = pa.table({"arch": ["a"], "status": ["TERMINATED"], "error": pa.array([None], pa.string()),
                      "val_acc": pa.array([None], pa.float64())})  # fmt: skip
    why = "the time budget (5 s) ran out before any trial reported 'val_acc'"
    with pytest.raises(SearchFailed, match=r"the time budget \(5 s\) ran out before any trial reported"):
        summarise_table(table, str(tmp_path), "val_acc", "max", silence=why)
    with pytest.raises(SearchFailed, match="no trial reported 'val_acc'"):
        summarise_table(table, str(tmp_path), "val_acc", "max")
