"""The trainable registry: what each trainable declares, the checks an experiment makes with it,
and every registered trainable reachable from ``raynas search --trainable``."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from ray import tune

from raynas.cli import main as cli_main
from raynas.experiment import SearchSettings
from raynas.trainables import available_trainables, register_trainable, trainable_info
from search_spaces import get_space


def test_every_built_in_trainable_is_registered_with_a_metric_it_reports():
    assert set(available_trainables()) >= {"standalone", "benchmark", "selfsup", "sampled", "supernet"}
    for name in available_trainables():
        info = trainable_info(name)
        assert issubclass(info.cls, tune.Trainable) and info.metric in info.reports and info.summary
        assert info.mode(info.metric) in ("max", "min")


def test_unknown_names_metrics_and_spaces_are_named():
    with pytest.raises(ValueError, match=r"unknown trainable 'standalon'; available: \['benchmark'"):
        trainable_info("standalon")
    with pytest.raises(ValueError, match="does not report 'val_ac'; did you mean 'val_acc'"):
        SearchSettings(metric="val_ac").check()
    with pytest.raises(ValueError, match=r"trains the spaces \['nago', 'nago-randwire', 'nago-darts-like'\], not 'nb201'"):
        SearchSettings(trainable="sampled", space="nb201").check()
    with pytest.raises(ValueError, match="already registered"):
        register_trainable("standalone", "again", settings=object, metric="val_acc", reports={"val_acc": "max"})(object)
    with pytest.raises(ValueError, match="include the default metric"):
        register_trainable("new", "a trainable", settings=object, metric="loss", reports={"val_acc": "max"})


def test_defaults_come_from_the_trainable():
    assert (SearchSettings(trainable="selfsup").metric, SearchSettings(trainable="selfsup").mode) == ("ssl_loss", "min")
    assert SearchSettings(trainable="sampled", metric="val_acc_std").mode == "min"
    assert SearchSettings(trainable="benchmark").trainable_info.checkpoint_frequency == 0


def _search(tmp_path, name, *flags):
    argv = ["search", "--storage", str(tmp_path), "--name", name, "--max-concurrent", "2", *flags]
    assert cli_main(argv) == 0
    return pq.read_table(tmp_path / name / "trials.parquet").to_pylist()


def test_cli_searches_nago_generators_with_the_sampled_trainable(ray_session, tmp_path):
    rows = _search(
        tmp_path, "sampled", "--trainable", "sampled", "--space", "nago", "--searcher", "random",
        "--dataset", "synthetic:64", "--num-samples", "2", "--epochs", "1",
        "--set", 'build={"width": 2}', "--set", "graph_samples=2",
    )  # fmt: skip
    assert len(rows) == 2 and all(r["status"] == "TERMINATED" for r in rows)
    assert all(r["graph_samples"] == 2 and r["val_acc_std"] >= 0 and r["val_acc_min"] <= r["val_acc"] for r in rows)


def test_cli_trains_one_supernet_per_seed(ray_session, tmp_path):
    rows = _search(
        tmp_path, "supernet", "--trainable", "supernet", "--space", "nb201", "--dataset", "synthetic:64",
        "--num-samples", "2", "--epochs", "1", "--seed", "3",
        "--set", 'build={"C": 4, "N": 1}', "--set", "probe_archs=2", "--set", "bn_recal_batches=1",
    )  # fmt: skip
    assert len(rows) == 2 and all(r["status"] == "TERMINATED" for r in rows)
    assert sorted(json.loads(r["config"])["seed"] for r in rows) == [3, 4]
    assert all(0 <= r["val_acc"] <= 100 and r["epoch"] == 1 for r in rows)


def test_cli_supernet_search_trains_and_searches_subnets_in_one_command(ray_session, tmp_path):
    rows = _search(
        tmp_path, "oneshot", "--trainable", "supernet", "--space", "nb201", "--dataset", "synthetic:64",
        "--num-samples", "1", "--epochs", "1", "--set", 'build={"C": 4, "N": 1}', "--set", "probe_archs=2",
        "--set", "bn_recal_batches=1", "--set", "subnet_search=random", "--set", "subnet_samples=5",
    )  # fmt: skip
    assert len(rows) == 1 and rows[0]["status"] == "TERMINATED"
    assert get_space("nb201").parse(rows[0]["best_arch"]) and 0 <= rows[0]["best_arch_acc"] <= 100
