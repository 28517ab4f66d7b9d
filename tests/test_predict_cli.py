"""`raynas predict FILE.py:FUNCTION --reference nb201`: a user's model scored against a reference table."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from predictors.reference import build_user_model, load_builder
from raynas.cli import main
from search_spaces import get_space

MODEL_FILE = '''
from torch import nn

def build(num_classes=10):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))

def not_a_model():
    return 42
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A model file and a small NB201 table whose accuracy grows with the number of 3x3 convs."""
    root = tmp_path_factory.mktemp("predict")
    (root / "model.py").write_text(MODEL_FILE)
    archs = get_space("nb201").sample_unique(20, 0)
    accuracy = [80.0 + 2.0 * str(a).count("conv_3x3") + 0.1 * i for i, a in enumerate(archs)]
    pq.write_table(pa.table({"arch_str": [str(a) for a in archs], "cifar10_valid_acc": accuracy}), root / "table.parquet")
    return root


def test_predict_fits_saves_and_reloads_the_reference_predictor(files, capsys):
    argv = ["predict", f"{files / 'model.py'}:build", "--benchmark", str(files / "table.parquet"),
            "--num-archs", "16", "--predictor", str(files / "pred"), "--neighbors", "2"]  # fmt: skip
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "fitted on 16 archs" in first and "predicted accuracy" in first and first.count("similar") == 2
    predicted = float(first.split("predicted accuracy")[1].split()[0])
    assert 80.0 <= predicted <= 92.0  # rank-calibrated into the table's range
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert "CG predictor loaded" in second
    assert second.split("predicted accuracy")[1].split()[0] == first.split("predicted accuracy")[1].split()[0]


@pytest.mark.parametrize(
    "spec,message",
    [("model.py", "path/to/model.py:function_name"), ("missing.py:build", "no such model file"),
     ("model.py:nothing", "defines no function 'nothing'")],
)  # fmt: skip
def test_bad_model_specs_name_what_is_wrong(files, spec, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_builder(str(files / spec))


def test_builder_must_return_a_module(files, capsys):
    with pytest.raises(ValueError, match="must return a torch.nn.Module, got int"):
        build_user_model(load_builder(f"{files / 'model.py'}:not_a_model"), 10)
    assert main(["predict", f"{files / 'model.py'}:build", "--benchmark", str(files / "absent.parquet")]) == 2
    assert "absent.parquet" in capsys.readouterr().err


def test_builder_gets_num_classes_when_it_takes_it(files):
    model = build_user_model(load_builder(f"{files / 'model.py'}:build"), 7)
    assert model[-1].out_features == 7 and not np.any([m.training for m in model.modules()])
