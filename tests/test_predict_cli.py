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


CONSTANT_AND_DIFFERENT = '''
import torch
from torch import nn

class Constant(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.body(x) * 0)

def constant(num_classes=10):
    return Constant(num_classes)

def deep(num_classes=10):
    layers, c = [], 3
    for w in (32, 32, 64, 64, 128):
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
'''


@pytest.fixture(scope="module")
def nb201_reference():
    from conftest import benchmark_file
    from predictors.reference import Reference

    reference = Reference.from_table(benchmark_file("nb201_all.parquet"), "nb201", "cifar10", num_archs=40, seed=0)
    reference.predictor.epochs = 15
    return reference.fit()


def test_a_network_whose_output_ignores_its_input_scores_at_the_bottom(files, nb201_reference):
    from predictors.reference import chance_if_input_ignored

    (files / "more.py").write_text(CONSTANT_AND_DIFFERENT)
    constant = build_user_model(load_builder(f"{files / 'more.py'}:constant"), 10)
    deep = build_user_model(load_builder(f"{files / 'more.py'}:deep"), 10)
    assert chance_if_input_ignored(constant, (3, 32, 32)) == 10.0 and chance_if_input_ignored(deep, (3, 32, 32)) is None
    nb201 = get_space("nb201")
    dead_cell = nb201.build(nb201.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), 10, (3, 32, 32))
    for model in (constant, dead_cell):
        score = nb201_reference.score(model)
        assert score.ignores_input and score.table_percentile == 0.0 and score.std == 0.0
        assert score.predicted == min(10.0, nb201_reference.accuracy.min())  # chance for 10 classes


def test_two_different_user_models_get_different_predictions_and_neighbors(files, nb201_reference):
    (files / "more.py").write_text(CONSTANT_AND_DIFFERENT)
    small = build_user_model(load_builder(f"{files / 'model.py'}:build"), 10)
    deep = build_user_model(load_builder(f"{files / 'more.py'}:deep"), 10)
    one, two = nb201_reference.score(small), nb201_reference.score(deep)
    assert one.predicted != two.predicted and one.std > 0 and two.std > 0
    assert [n for n, _, _ in one.neighbors] != [n for n, _, _ in two.neighbors]
    assert all(c < 0.999 for _, _, c in one.neighbors + two.neighbors)
    assert one.out_of_distribution  # a 3-layer CNN is far from every full-size NB201 network


def test_the_prediction_moves_less_than_its_stated_uncertainty_with_more_references(files, nb201_reference):
    from conftest import benchmark_file
    from predictors.reference import Reference

    deep = build_user_model(load_builder(f"{files / 'more.py'}:deep"), 10)
    more = Reference.from_table(benchmark_file("nb201_all.parquet"), "nb201", "cifar10", num_archs=80, seed=0)
    more.predictor.epochs = 15
    first, second = nb201_reference.score(deep), more.fit().score(deep)
    assert abs(first.predicted - second.predicted) < max(first.std, second.std)


def test_a_fitted_reference_is_cached_and_reused(files, tmp_path, capsys):
    argv = ["predict", f"{files / 'model.py'}:build", "--benchmark", str(files / "table.parquet"),
            "--num-archs", "16", "--cache-dir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "fitted on 16 archs" in capsys.readouterr().out
    assert main(argv) == 0
    assert "loaded from" in capsys.readouterr().out and len(list(tmp_path.iterdir())) == 1
