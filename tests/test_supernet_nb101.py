"""The NB101 weight-sharing supernet: every cell of the space on one set of weights with
dynamic (sliced) channels, sub-network extraction, fair sampling, the trainable and the CLI."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch

from raynas.cli import main as cli_main
from raynas.data import load_dataset
from raynas.trainables.standalone import accuracy
from raynas.trainables.supernet import (
    PathSampler,
    SupernetSettings,
    evaluate_path,
    make_supernet,
    recalibrate_bn,
)
from raynas.trainables.supernet_nb101 import NB101SuperCell, pruned_path
from raynas.trainables.supernet_net import build_supernet, extract_subnet
from search_spaces import get_space, nb101_net
from search_spaces.nb101 import prune

SPACE = get_space("nb101")
BUILD = {"stem_channels": 8, "num_stacks": 2, "num_modules_per_stack": 1}
TINY = {
    "space": "nb101", "dataset": "digits", "epochs": 2, "build": {**BUILD, "num_stacks": 1}, "data_portion": 0.2,
    "probe_archs": 3, "bn_recal_batches": 1, "batch_size": 32,
}  # fmt: skip
#: input -> output only: a cell with no interior vertex
TWO_NODES = (((0, 1), (0, 0)), ("input", "output"))
#: 7 vertices, 9 edges: a chain plus input->3, 1->4, 2->6
SEVEN_NODES = (
    (
        (0, 1, 0, 1, 0, 0, 0),
        (0, 0, 1, 0, 1, 0, 0),
        (0, 0, 0, 1, 0, 0, 1),
        (0, 0, 0, 0, 1, 0, 0),
        (0, 0, 0, 0, 0, 1, 0),
        (0, 0, 0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0, 0, 0),
    ),
    ("input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"),
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _supernet(bn_mode: str = "running"):
    torch.manual_seed(0)
    return make_supernet(SupernetSettings.from_config({"space": "nb101", "build": BUILD, "bn_mode": bn_mode}), load_dataset("synthetic:64"))


def _cells() -> list:
    """Pruned specs of every kind: a random sample, the 2-vertex cell and a 7-vertex / 9-edge one."""
    sampled = [pruned_path(a.spec) for a in SPACE.sample_unique(30, 7)]
    return [TWO_NODES, SEVEN_NODES, *sampled]


def test_cell_sample_covers_two_to_seven_vertices_and_nine_edges():
    cells = _cells()
    assert SPACE.is_valid(SEVEN_NODES) and sum(map(sum, SEVEN_NODES[0])) == 9
    assert {len(ops) for _, ops in cells} == {2, 3, 4, 5, 6, 7}


def test_every_vertex_position_holds_every_op_at_the_cells_output_width():
    net = _supernet()
    cells = [m for m in net.modules() if isinstance(m, NB101SuperCell)]
    assert [(c.in_channels, c.out_channels) for c in cells] == [(8, 8), (8, 16)]
    cell = cells[1]
    assert list(cell.vertex_ops) == ["1", "2", "3", "4", "5"] and list(cell.projections) == ["1", "2", "3", "4", "5", "6"]
    for ops in cell.vertex_ops.values():
        for op, module in ops.items():
            assert type(module) is type(nb101_net.make_op(op, 16))
        assert ops["conv3x3-bn-relu"][0].weight.shape == (16, 16, 3, 3)
    assert cell.projections["6"][0].weight.shape == (16, 8, 1, 1)


def test_every_kind_of_cell_runs_and_its_extracted_subnet_computes_exactly_the_same():
    net = _supernet()
    net.train()
    for spec in _cells()[:4]:  # move running stats off their init
        net(torch.randn(16, 3, 8, 8), spec)
    net.eval()
    x = torch.randn(5, 3, 8, 8)
    for spec in _cells():
        subnet = extract_subnet(net, spec)
        standalone = SPACE.build(SPACE.make(spec), num_classes=4, in_shape=(3, 8, 8), **BUILD)
        standalone.load_state_dict(subnet.state_dict())  # strict: same names, same shapes
        with torch.no_grad():
            assert torch.equal(net(x, spec), subnet(x)), spec
            assert torch.equal(standalone.eval()(x), subnet(x))


def test_an_unpruned_spec_runs_its_pruned_cell():
    net = _supernet().eval()
    arch = next(a for a in (SPACE.sample(s) for s in range(100)) if len(a.spec[1]) > len(pruned_path(a.spec)[1]))
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x, arch.spec), net(x, prune(*arch.spec)))


def test_a_path_trains_only_the_leading_slice_of_its_vertex_weights_and_statistics():
    net = _supernet()
    # three interior vertices, all feeding the output: the second cell's 16 channels split 6/5/5
    matrix = ((0, 1, 1, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0))
    spec = (matrix, ("input", "conv3x3-bn-relu", "conv1x1-bn-relu", "conv3x3-bn-relu", "output"))
    cell = net.cells[-1]
    assert nb101_net.vertex_channels(8, 16, matrix) == [8, 6, 5, 5, 16]
    conv, bn, _ = cell.vertex_ops["2"]["conv1x1-bn-relu"]
    before = bn.running_mean.clone()
    net.train()
    net(torch.randn(8, 3, 8, 8), spec).sum().backward()
    assert conv.weight.grad[:5, :5].abs().sum() > 0
    assert conv.weight.grad[5:].abs().sum() == 0 and conv.weight.grad[:, 5:].abs().sum() == 0
    assert not torch.equal(bn.running_mean[:5], before[:5]) and torch.equal(bn.running_mean[5:], before[5:])
    assert cell.projections["3"][0].weight.grad[5:].abs().sum() == 0
    assert cell.projections["6"][0].weight.grad is None  # no input->output edge
    state = extract_subnet(net, spec).state_dict()
    assert torch.equal(state["cells.2.vertex_ops.2.0.weight"], conv.weight[:5, :5])
    assert torch.equal(state["cells.2.vertex_ops.2.1.running_var"], bn.running_var[:5])
    assert torch.equal(state["cells.2.projections.1.0.weight"], cell.projections["1"][0].weight[:6])


def test_the_output_of_a_smaller_cell_runs_on_the_last_supernet_position():
    net = _supernet()
    spec = (((0, 1, 1), (0, 0, 1), (0, 0, 0)), ("input", "maxpool3x3", "output"))
    keys = {k: net.subnet_key(k, spec) for k in net.state_dict()}
    assert keys["cells.0.projections.6.0.weight"] == "cells.0.projections.2.0.weight"
    assert keys["cells.0.projections.1.0.weight"] == "cells.0.projections.1.0.weight"
    assert keys["cells.0.projections.2.0.weight"] is None
    assert all(v is None for k, v in keys.items() if ".vertex_ops." in k)  # a max-pool has no weights


@pytest.mark.parametrize("bn_mode", ["running", "batch", "recalibrate"])
def test_inherited_accuracy_equals_the_extracted_subnets_accuracy(digits, bn_mode):
    settings = SupernetSettings.from_config({**TINY, "bn_mode": bn_mode})
    torch.manual_seed(0)
    net = make_supernet(settings, digits)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spec = SPACE.sample(3).spec
    inherited = evaluate_path(net, spec, digits, settings)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # scoring leaves the supernet as it was
    if bn_mode == "recalibrate":
        recalibrate_bn(net, spec, digits, settings)
    assert inherited == accuracy(extract_subnet(net.eval(), spec), digits, "valid")


@pytest.mark.parametrize("mode", ["fair", "strict_fair"])
def test_fair_sampling_gives_each_vertex_position_each_op_at_most_once_per_group(mode):
    sampler = PathSampler(SPACE, mode, seed=0)
    for _ in range(5):
        group = next(sampler) if mode == "strict_fair" else [next(sampler) for _ in SPACE.ops]
        assert len(group) == len(SPACE.ops)
        for v in range(1, 6):
            ops = [spec[1][v] for spec in group if v < len(spec[1]) - 1]
            assert len(ops) == len(set(ops))
        assert all(SPACE.is_valid(spec) and prune(*spec) == spec for spec in group)


def test_bad_nb101_supernet_settings_are_named():
    with pytest.raises(ValueError, match="bn_affine=False is not allowed for the nb101 supernet"):
        build_supernet("nb101", 10, (3, 8, 8), {"num_stacks": 1}, affine=False)
    with pytest.raises(ValueError, match="unknown nb101 supernet build options \\['C'\\]; allowed: \\['stem_channels'"):
        build_supernet("nb101", 10, (3, 8, 8), {"C": 8})
    with pytest.raises(ValueError, match="the input does not reach the output"):
        _supernet()(torch.randn(1, 3, 8, 8), (((0, 0), (0, 0)), ("input", "output")))


def test_cli_trains_the_nb101_supernet_and_searches_its_subnets(ray_session, tmp_path):
    argv = [
        "search", "--storage", str(tmp_path), "--name", "nb101", "--trainable", "supernet", "--space", "nb101",
        "--dataset", "digits", "--num-samples", "1", "--epochs", "1", "--set", 'build={"stem_channels": 4, "num_stacks": 1}',
        "--set", "probe_archs=2", "--set", "bn_recal_batches=1", "--set", "data_portion=0.2",
        "--set", "subnet_search=random", "--set", "subnet_samples=4",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    [row] = pq.read_table(tmp_path / "nb101" / "trials.parquet").to_pylist()
    assert row["status"] == "TERMINATED" and json.loads(row["config"])["space"] == "nb101"
    assert 0 <= row["val_acc"] <= 100 and row["epoch"] == 1
    assert SPACE.is_valid(SPACE.parse(row["best_arch"]).spec) and 0 <= row["best_arch_acc"] <= 100
