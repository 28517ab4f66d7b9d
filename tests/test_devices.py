"""Where a network runs and in what precision: the device decision from given GPU lists (no
test pretends CUDA exists), mistakes named, and the bf16 autocast path training on the CPU."""
from __future__ import annotations

import pytest
import torch

from raynas.devices import autocast, check_device_name, check_precision, resolve_device
from raynas.trainables import StandaloneTrainable
from raynas.trainables.standalone import ArchTraining
from search_spaces import get_space

SPACE = get_space("nb201")
TINY = {**SPACE.encode(SPACE.from_index(6111)), "epochs": 2, "build": {"C": 4, "N": 1}}


@pytest.mark.parametrize(
    "requested, gpu_ids, cuda_count, expected",
    [
        ("auto", [], 0, "cpu"),  # a CPU trial
        ("auto", [], 2, "cpu"),  # GPUs on the node, none assigned to this trial
        ("auto", ["3"], 1, "cuda:0"),  # Ray assigned GPU 3: it is the process's only visible device
        ("auto", [0, 1], 2, "cuda:0"),
        ("auto", ["0"], 0, "cpu"),  # assigned, but torch is the CPU build
        ("cpu", ["0"], 1, "cpu"),
        ("cuda", ["0"], 1, "cuda:0"),
        ("cuda:1", ["0", "1"], 2, "cuda:1"),
    ],
)
def test_the_device_follows_the_gpus_ray_assigned(requested, gpu_ids, cuda_count, expected):
    assert resolve_device(requested, gpu_ids, cuda_count) == torch.device(expected)


@pytest.mark.parametrize(
    "requested, cuda_count, message",
    [("cuda", 0, r"asked for, but this process sees 0 CUDA device"), ("cuda:2", 2, "sees 2 CUDA device"),
     ("gpu", 1, "device must be one of"), ("cuda:x", 1, "device must be one of"), ("cpu:0", 1, "device must be one of")],
)  # fmt: skip
def test_a_device_that_is_not_there_is_named(requested, cuda_count, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(requested, ["0"], cuda_count)


def test_precision_mistakes_are_named():
    assert check_device_name("cuda:3") == "cuda:3"
    with pytest.raises(ValueError, match="precision must be one of"):
        check_precision("16", torch.device("cpu"))
    with pytest.raises(ValueError, match="'fp16' needs a CUDA device; on the CPU use 'bf16'"):
        check_precision("fp16", torch.device("cpu"))


def test_bf16_autocast_trains_and_reports_on_the_cpu():
    training = ArchTraining({**TINY, "precision": "bf16"})
    x, _ = next(iter(training.train_batches()))
    with autocast(training.device, training.precision):
        assert training.model(x).dtype == torch.bfloat16  # the forward really runs in bf16
    assert training.model(x).dtype == torch.float32  # and only inside the context
    trainable = StandaloneTrainable(config={**TINY, "precision": "bf16", "channels_last": True})
    results = [trainable.train() for _ in range(2)]
    assert all(r["device"] == "cpu" and r["train_loss"] > 0 and 0 <= r["val_acc"] <= 100 for r in results)
    assert results[-1]["train_loss"] < results[0]["train_loss"]  # it learns
    assert next(trainable.training.model.parameters()).dtype == torch.float32  # master weights stay fp32
    trainable.stop()
