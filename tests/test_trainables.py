"""Trainables driven directly (no Ray session): metrics, checkpoint/restore, bad input."""
from __future__ import annotations

import pytest

from conftest import benchmark_file
from raynas.trainables import BenchmarkTrainable, StandaloneTrainable
from search_spaces import get_space

SPACE = get_space("nb201")
ARCH = SPACE.from_index(6111)
SMALL = {**SPACE.encode(ARCH), "epochs": 3, "build": {"C": 8, "N": 1}}


def test_standalone_reports_every_epoch_and_finishes():
    trainable = StandaloneTrainable(config=SMALL)
    results = [trainable.train() for _ in range(3)]
    assert [r["epoch"] for r in results] == [1, 2, 3]
    assert all(0 <= r["val_acc"] <= 100 and r["train_loss"] > 0 for r in results)
    assert results[-1]["done"] and "test_acc" in results[-1]
    assert results[-1]["val_acc"] > 30  # digits are learnable in 3 epochs even by a tiny net
    assert results[0]["params"] == sum(p.numel() for p in trainable.model.parameters())
    assert results[0]["flops"] > results[0]["params"]
    trainable.stop()


def test_restored_trial_continues_exactly_where_it_stopped():
    first = StandaloneTrainable(config=SMALL)
    first.train()
    checkpoint = first.save()
    expected = first.train()
    second = StandaloneTrainable(config=SMALL)
    second.restore(checkpoint)
    got = second.train()
    assert got["epoch"] == 2
    assert got["val_acc"] == expected["val_acc"] and got["train_loss"] == expected["train_loss"]  # bit-exact on the CPU


def test_reset_config_trains_the_new_architecture():
    trainable = StandaloneTrainable(config=SMALL)
    trainable.train()
    other = SPACE.from_index(0)
    assert trainable.reset_config({**SMALL, **SPACE.encode(other)})
    result = trainable.train()
    assert result["epoch"] == 1 and result["arch"] == str(other)


def test_non_finite_loss_raises_a_clear_error():
    trainable = StandaloneTrainable(config={**SMALL, "lr": 1e30, "grad_clip": 0, "epochs": 5})
    with pytest.raises(FloatingPointError, match="non-finite training loss.*lr=1e\\+30"):
        for _ in range(5):
            trainable.train()


@pytest.mark.parametrize(
    "change, words",
    [({"epochs": 0}, "epochs must be > 0"), ({"edge_1_0": "conv9"}, "edge_1_0"), ({"build": {"width": 2}}, "width")],
)
def test_bad_trial_configs_are_named(change, words):
    with pytest.raises(ValueError, match=words):
        StandaloneTrainable(config={**SMALL, **change})


def test_benchmark_trainable_reports_short_then_full_schedule():
    config = {**SPACE.encode(ARCH), "benchmark": str(benchmark_file("nb201_all.parquet")), "dataset": "cifar10"}
    trainable = BenchmarkTrainable(config=config)
    short, full = trainable.train(), trainable.train()
    assert (short["epoch"], full["epoch"]) == (12, 200)
    assert short["val_acc"] < full["val_acc"] == pytest.approx(91.6067, abs=1e-3)
    assert full["test_acc"] == pytest.approx(94.3733, abs=1e-3) and full["done"]
    assert full["simulated_time_s"] == pytest.approx(200 / 12 * short["simulated_time_s"])
    checkpoint = trainable.save()
    again = BenchmarkTrainable(config=config)
    again.restore(checkpoint)
    assert again.position == 2


def test_benchmark_trainable_needs_a_table():
    with pytest.raises(ValueError, match="needs config\\['benchmark'\\]"):
        BenchmarkTrainable(config=SPACE.encode(ARCH))
