"""A search space from the user's own model function: the space contract, conditional keys,
every searcher, the predictors, a real Tuner and the CLI with a space defined here."""
from __future__ import annotations

import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from ray import tune
from torch import nn

from raynas.cli import main as cli_main
from search_spaces import FunctionSpace, function_space, get_space, space_listing
from searchers import FINISHED, available_searchers, make_searcher


def build_cnn(depth, width, kernel_1, kernel_2, kernel_3, num_classes, in_shape):
    layers, channels = [], in_shape[0]
    for kernel in (kernel_1, kernel_2, kernel_3)[:depth]:
        layers += [nn.Conv2d(channels, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


PARAMS = {
    "depth": tune.choice([1, 2, 3]),
    "width": tune.choice([4, 8, 16]),
    "kernel_1": tune.choice([3, 5]),
    "kernel_2": tune.choice([3, 5]),
    "kernel_3": tune.choice([3, 5]),
}
CONDITIONS = {"kernel_2": lambda c: c["depth"] >= 2, "kernel_3": lambda c: c["depth"] >= 3}
SPACE = FunctionSpace(build_cnn, PARAMS, name="testcnn", conditions=CONDITIONS)
#: 3 widths x (2 + 4 + 8 kernel settings of depths 1, 2, 3)
SIZE = 3 * (2 + 4 + 8)


def test_configs_that_differ_only_in_unused_keys_are_one_architecture():
    one = SPACE.decode({"depth": 1, "width": 8, "kernel_1": 3, "kernel_2": 5, "kernel_3": 5})
    two = SPACE.decode({"depth": 1, "width": 8, "kernel_1": 3, "kernel_2": 3, "kernel_3": 3})
    assert one == two and hash(one) == hash(two) and one.key == "depth=1|width=8|kernel_1=3"
    assert SPACE.decode({"depth": 1, "width": 8, "kernel_1": 3}) == one  # unused keys may be left out
    assert str(SPACE.canonical(one)) == "depth=1|width=8|kernel_1=3|kernel_2=3|kernel_3=3"
    assert SPACE.parse(str(one)).same_spec(one)
    with pytest.raises(ValueError, match=r"missing keys \['kernel_2'\]"):
        SPACE.decode({"depth": 2, "width": 8, "kernel_1": 3})


def test_enumerate_counts_each_architecture_once_and_a_search_never_repeats_one():
    archs = list(SPACE.enumerate())
    assert len(archs) == len({a.key for a in archs}) == SIZE
    searcher = make_searcher("random", SPACE, "val_acc", "max", seed=0)
    keys = []
    for i in range(SIZE + 5):
        config = searcher.suggest(str(i))
        if config == FINISHED:
            break
        keys.append(SPACE.decode(config).key)
        searcher.on_trial_complete(str(i), {"val_acc": 1.0})
    assert len(keys) == len(set(keys)) == SIZE


def test_neighbors_move_one_used_parameter_to_an_adjacent_value():
    arch = SPACE.decode({"depth": 2, "width": 8, "kernel_1": 3, "kernel_2": 5, "kernel_3": 3})
    changed = []
    for other in SPACE.neighbors(arch):
        diff = {k for k, v in SPACE.encode(other).items() if v != SPACE.encode(arch)[k]}
        assert len(diff) == 1 and diff != {"kernel_3"}  # kernel_3 is unused at depth 2
        changed.append(next(iter(diff)))
    assert sorted(changed) == ["depth", "depth", "kernel_1", "kernel_2", "width", "width"]
    widths = sorted(SPACE.encode(o)["width"] for o in SPACE.neighbors(arch) if SPACE.encode(o)["width"] != 8)
    assert widths == [4, 16]


def test_integer_and_continuous_domains():
    def mlp(layers, dropout, num_classes, in_shape):
        return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(int(np.prod(in_shape)), num_classes))

    space = FunctionSpace(mlp, {"layers": tune.qrandint(2, 8, 2), "dropout": tune.uniform(0.0, 0.5)}, name="mlp", register=False)
    arch = space.sample(0)
    assert space.encode(arch)["layers"] in (2, 4, 6, 8) and 0 <= space.encode(arch)["dropout"] <= 0.5
    assert all(abs(space.encode(n)["dropout"] - space.encode(arch)["dropout"]) <= 0.05 + 1e-9 or
               space.encode(n)["layers"] != space.encode(arch)["layers"] for n in space.neighbors(arch))  # fmt: skip
    with pytest.raises(TypeError, match="continuous"):
        next(space.enumerate())
    assert space.build(arch, num_classes=3, in_shape=(1, 4, 4))(torch.randn(2, 1, 4, 4)).shape == (2, 3)


def test_build_calls_the_function_and_mistakes_are_named_when_the_space_is_made():
    model = SPACE.build(SPACE.sample(1), num_classes=7, in_shape=(1, 8, 8))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"takes no argument \['depht'\]"):
        FunctionSpace(build_cnn, {**PARAMS, "depht": tune.choice([1])}, name="typo", register=False)
    with pytest.raises(ValueError, match="conditions name"):
        FunctionSpace(build_cnn, PARAMS, name="cond", conditions={"kernel_4": lambda c: True}, register=False)
    with pytest.raises(ValueError, match="not supported"):
        FunctionSpace(build_cnn, {**PARAMS, "depth": tune.randn()}, name="normal", register=False)
    with pytest.raises(ValueError, match="unknown testcnn build options"):
        SPACE.build(SPACE.sample(0), width_multiplier=2)
    with pytest.raises(ValueError, match="built-in space"):
        FunctionSpace(build_cnn, PARAMS, name="nb201")
    with pytest.raises(ValueError, match="width: 7 is not allowed"):
        SPACE.decode({"depth": 1, "width": 7, "kernel_1": 3})


def test_the_decorator_names_the_space_after_the_function():
    @function_space({"width": tune.choice([2, 4])})
    def tiny(width, num_classes):
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    assert isinstance(tiny, FunctionSpace) and tiny.name == "tiny" and get_space("tiny") is tiny
    assert ("tiny", "FunctionSpace of this process") in space_listing()


@pytest.mark.parametrize("name", sorted(available_searchers()))
def test_every_searcher_searches_it_without_repeats(name):
    options = {"num_initial": 2, "optimizer_options": {"num_restarts": 2, "raw_samples": 32}} if name == "ax" else {}
    if name == "given":  # proposes the architectures it is given, and no others
        options = {"archs": [str(a) for a in SPACE.sample_unique(6, 0)]}
    searcher = make_searcher(name, SPACE, "val_acc", "max", seed=0, **options)
    keys = []
    for i in range(6):
        config = searcher.suggest(str(i))
        arch = SPACE.decode(config)
        keys.append(arch.key)
        searcher.on_trial_complete(str(i), {"val_acc": float(SPACE.encode(arch)["width"] + SPACE.encode(arch)["depth"])})
    assert len(set(keys)) == 6


def test_zero_cost_proxies_and_the_cg_predictor_read_its_networks():
    from predictors.cg import CGPredictor
    from predictors.zero_cost import ZeroCostPredictor

    archs = SPACE.sample_unique(6, 0)
    params, _ = ZeroCostPredictor("params", space=SPACE, dataset="digits").predict(archs)
    assert len(set(params)) > 1
    predictor = CGPredictor(epochs=2, n_heads=2, use_ray=False, input_shape=(1, 1, 8, 8))
    mean, std = predictor.fit(archs, params).predict(SPACE.sample_unique(3, 1))
    assert mean.shape == std.shape == (3,) and np.all(np.isfinite(mean))


def test_a_tuner_trains_a_space_defined_in_the_test_file(ray_session, tmp_path):
    from raynas.data import load_dataset
    from raynas.trainables import StandaloneTrainable, with_data

    tuner = tune.Tuner(
        with_data(StandaloneTrainable, load_dataset("digits"), space=SPACE),
        param_space={"space": SPACE.name, "dataset": "digits", "epochs": 1},
        tune_config=tune.TuneConfig(search_alg=make_searcher("rea", SPACE, seed=0), metric="val_acc", mode="max",
                                    num_samples=3, reuse_actors=True),  # fmt: skip
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="own-space", verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 3 and results.num_errors == 0
    assert all(SPACE.parse(r.metrics["arch"]).space == "testcnn" and r.metrics["val_acc"] > 0 for r in results)


USER_FILE = textwrap.dedent(
    '''
    from ray import tune
    from torch import nn
    from search_spaces import FunctionSpace

    def build(width, num_classes, in_channels):
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(width, num_classes))

    SPACE = FunctionSpace(build, {"width": tune.choice([2, 4, 8])}, name="filespace")
    '''
)


def test_cli_searches_a_space_from_a_file(ray_session, tmp_path, capsys):
    (tmp_path / "myspace.py").write_text(USER_FILE)
    spec = f"{tmp_path / 'myspace.py'}:SPACE"
    argv = ["search", "--space", spec, "--searcher", "random", "--num-samples", "3", "--epochs", "1",
            "--storage", str(tmp_path), "--name", "file-space"]  # fmt: skip
    assert cli_main(argv) == 0
    rows = pq.read_table(tmp_path / "file-space" / "trials.parquet").to_pylist()
    assert sorted(r["arch"] for r in rows) == ["width=2", "width=4", "width=8"]
    assert cli_main(["spaces"]) == 0 and "filespace    FunctionSpace of this process" in capsys.readouterr().out
    assert cli_main(["search", "--space", f"{tmp_path / 'myspace.py'}:NOPE"]) == 2
    assert "defines no object 'NOPE'" in capsys.readouterr().err


def test_an_installed_plugin_is_listed_and_found(tmp_path, monkeypatch):
    (tmp_path / "plugin_spaces.py").write_text(USER_FILE.replace('name="filespace"', 'name="pluginspace"'))
    dist = tmp_path / "plugin_spaces-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-spaces\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[raynas.spaces]\npluginspace = plugin_spaces:SPACE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ("pluginspace", "plugin (plugin_spaces:SPACE)") in space_listing()
    assert get_space("pluginspace").name == "pluginspace"


def test_the_readme_example_of_an_own_space_runs(ray_session, tmp_path, monkeypatch, capsys):
    from conftest import REPO

    blocks = (REPO / "README.md").read_text().split("```python\n")[1:]
    (example,) = [b.split("```")[0] for b in blocks if "FunctionSpace(" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README own-space example", "exec"), {})
    arch, value, params = capsys.readouterr().out.splitlines()[-1].split()
    assert arch.startswith("depth=") and 0 < float(value) <= 100 and int(params) > 0
