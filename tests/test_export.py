"""``raynas export`` and ``latency_ms``: artifacts that load without raynas and compute what the
trained network computes; an operator without an ONNX mapping named; latency measured."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import raynas
from raynas.cli import main as cli_main
from raynas.experiment import SETTINGS_FILE, SearchSettings
from raynas.export import ExportMismatch, export_model
from raynas.io import write_parquet_atomic
from raynas.latency import measure_latency
from raynas.onnx_io import UnsupportedOperator
from search_spaces import get_space


@pytest.fixture(scope="module")
def search(ray_session, tmp_path_factory):
    """A real two-objective search (accuracy against measured latency), 3 trials of 1 epoch."""
    storage = tmp_path_factory.mktemp("runs")
    flags = ["search", "--num-samples", "3", "--epochs", "1", "--storage", str(storage), "--name", "s",
             "--set", 'build={"C": 4, "N": 1}', "--objectives", "val_acc:max,latency_ms:min"]  # fmt: skip
    assert cli_main(flags) == 0
    return storage / "s"


def test_a_search_on_accuracy_against_measured_latency(search):
    rows = pq.read_table(search / "trials.parquet").to_pylist()
    assert all(r["latency_ms"] > 0 for r in rows) and (search / "pareto.parquet").is_file()
    assert (search / "report.html").is_file()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "state_dict"])
def test_the_best_models_export_and_load_with_and_without_raynas(search, tmp_path, capsys, fmt):
    assert cli_main(["export", str(search), "--format", fmt, "--top-k", "2", "--out", str(tmp_path)]) == 0
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert 1 <= len(folders) <= 2 and "max |diff|" in capsys.readouterr().out
    meta = json.loads((folders[0] / "model.json").read_text())
    assert meta["max_abs_diff"] <= meta["tolerance"] * max(1, meta["max_abs_output"]) and meta["in_shape"] == [1, 8, 8] and meta["num_classes"] == 10
    assert "val_acc" in meta["metrics"] and meta["normalise"]["std"]
    x = torch.randn(5, *meta["in_shape"])
    model, _ = raynas.load_model(folders[0])
    ours = torch.as_tensor(model(x))
    space = get_space(meta["space"])
    reference = space.build(space.parse(meta["arch"]), num_classes=10, in_shape=(1, 8, 8), **meta["build"]).eval()
    state = torch.load(meta["source"]["checkpoint"], weights_only=False)["model"]
    reference.load_state_dict(state)
    assert torch.allclose(ours, reference(x), atol=1e-4)  # the trained weights, not fresh ones
    if fmt == "torchscript":
        assert torch.allclose(torch.jit.load(str(folders[0] / "model.pt"))(x), ours, atol=1e-5)
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(folders[0] / "model.onnx"))
        assert np.allclose(session.run(None, {"images": x.numpy()})[0], ours.numpy(), atol=1e-5)


class _Median(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.kthvalue(x.flatten(1), 2, dim=1).values[:, None]


def test_an_operator_without_an_onnx_mapping_is_named(tmp_path):
    with pytest.raises(UnsupportedOperator, match="the operator aten::kthvalue has no ONNX mapping"):
        export_model(_Median(), {"in_shape": [1, 4, 4]}, tmp_path, "onnx")


def test_an_export_that_does_not_match_is_refused(tmp_path):
    space = get_space("nb201")
    model = space.build(space.sample(0), num_classes=10, in_shape=(1, 8, 8), C=4, N=1)
    with pytest.raises(ExportMismatch, match="differs from the PyTorch network by up to"):
        export_model(model, {"in_shape": [1, 8, 8]}, tmp_path, "onnx", atol=0.0)  # float rounding differs


def _finished(folder, settings, row, trial_folder):
    """A finished experiment of one trial (settings, trials table); the trial's checkpoint folder."""
    (folder / SETTINGS_FILE).write_text(settings.to_json())
    write_parquet_atomic(pa.Table.from_pylist([row]), folder / "trials.parquet")
    checkpoint = folder / trial_folder / "checkpoint_000000"
    checkpoint.mkdir(parents=True)
    return checkpoint


def test_a_trial_without_one_networks_weights_says_to_retrain_it(tmp_path, capsys):
    row = {"arch": str(get_space("nago").sample(0)), "val_acc": 50.0, "trial_id": "ab12"}
    settings = SearchSettings(space="nago", trainable="sampled", dataset="digits")
    (_finished(tmp_path, settings, row, "SampledTrainable_ab12_1_x") / "draws.pt").write_bytes(b"")
    assert cli_main(["export", str(tmp_path), "--out", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err
    assert "('sampled' trainable) holds no single network's weights (its checkpoint has ['draws.pt'])" in err
    assert f"retrain its architecture with `raynas train --from {tmp_path}`" in err


def test_a_label_free_trials_weights_are_not_exported_as_a_classifier(tmp_path, capsys):
    space = get_space("nb201")
    arch = space.sample(0)
    row = {"arch": str(arch), "ssl_loss": 1.0, "trial_id": "cd34"}
    checkpoint = _finished(tmp_path, SearchSettings(trainable="selfsup", metric="ssl_loss", mode="min"), row,
                           "SelfSupervisedTrainable_cd34_1_x")  # fmt: skip
    backbone = space.build(arch, num_classes=10, in_shape=(1, 8, 8))
    torch.save({"model": {f"backbone.{k}": v for k, v in backbone.state_dict().items()}}, checkpoint / "state.pt")
    assert cli_main(["export", str(tmp_path), "--out", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err
    assert "('selfsup' trainable) holds the weights of another model than the classifier raynas builds" in err


def test_latency_is_a_median_with_its_spread_and_grows_with_the_network():
    space = get_space("nb201")
    arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    small = measure_latency(space.build(arch, num_classes=10, in_shape=(3, 32, 32), C=4, N=1), (3, 32, 32), runs=10)
    big = measure_latency(space.build(arch, num_classes=10, in_shape=(3, 32, 32), C=32, N=3), (3, 32, 32), runs=10)
    assert 0 < small.q25_ms <= small.median_ms <= small.q75_ms and small.runs == 10
    assert big.median_ms > 3 * small.median_ms
    served = measure_latency(space.build(arch, num_classes=10, in_shape=(3, 32, 32), C=4, N=1), (3, 32, 32),
                             runs=5, backend="onnxruntime")  # fmt: skip
    assert served.median_ms > 0 and served.backend == "onnxruntime"


def test_the_benchmark_trainable_reports_the_tables_latency_in_ms():
    from conftest import benchmark_file
    from raynas.trainables import BenchmarkTrainable

    table = str(benchmark_file("nb201_all.parquet"))
    space = get_space("nb201")
    config = {**space.encode(space.sample(0)), "space": "nb201", "benchmark": table, "dataset": "cifar10"}
    trainable = BenchmarkTrainable(config)
    result = trainable.train()
    trainable.stop()
    assert result["latency_ms"] == pytest.approx(1e3 * result["latency_s"]) and result["latency_ms"] > 0
