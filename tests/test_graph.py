"""Computation graphs: tracing any module into a primitive-operator DAG and into PyG."""
from __future__ import annotations

import inspect

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch_geometric.data import Batch

from raynas.graph import NUM_NODE_FEATURES, NUMERIC_FEATURES, OP_TYPES, ComputationGraph, TraceError, to_pyg, trace


# ----------------------------------------------------------------------------- user models
class BasicBlock(nn.Module):
    """torchvision-style residual block; the shortcut is chosen by config, which fx follows."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class SmallResNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, c_in = [], widths[0]
        for i, width in enumerate(widths):
            blocks.append(BasicBlock(c_in, width, stride=1 if i == 0 else 2))
            c_in = width
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class BranchyNet(nn.Module):
    """torch.cat, F.adaptive_avg_pool2d, x.flatten(1), x.view(x.size(0), -1), a depthwise conv."""

    def __init__(self):
        super().__init__()
        self.left = nn.Conv2d(3, 8, 3, padding=1)
        self.right = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, groups=3), nn.Conv2d(3, 4, 1))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.left(x), self.right(x)], dim=1)
        y = self.pool(y)
        y = F.adaptive_avg_pool2d(y, 1)
        y = y.view(y.size(0), -1)
        return self.head(y.flatten(1))


class Gate(nn.Module):
    """Data-dependent control flow: fx cannot trace this forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.conv(x)
        return x


class GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Gate())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


def node_of(cg: ComputationGraph, name: str) -> dict:
    return next(attrs for _, attrs in cg.graph.nodes(data=True) if attrs["name"] == name)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- structure
def test_resnet_becomes_a_dag_of_primitive_operators():
    cg = trace(SmallResNet())
    graph = cg.graph
    assert nx.is_directed_acyclic_graph(graph)
    assert all(u < v for u, v in graph.edges), "nodes are numbered in topological order"
    ops = cg.op_types()
    assert ops[0] == "input" and ops[-1] == "output" and ops.count("input") == ops.count("output") == 1
    assert set(ops) == {"input", "conv", "bn", "relu", "add", "global_pool", "reshape", "linear", "output"}
    assert ops.count("conv") == 1 + 2 * 3 + 2  # stem, two per block, two downsample shortcuts
    assert nx.has_path(graph, 0, graph.number_of_nodes() - 1)


def test_downsample_shortcut_and_main_path_meet_at_add():
    cg = trace(SmallResNet())
    shortcut = [n for n, a in cg.graph.nodes(data=True) if a["name"] == "layers.1.downsample.0"][0]
    add = next(iter(cg.graph.successors(next(iter(cg.graph.successors(shortcut))))))
    assert cg.graph.nodes[add]["op"] == "add"
    assert len(list(cg.graph.predecessors(add))) == 2
    assert node_of(cg, "layers.1.downsample.0")["stride"] == 2
    assert node_of(cg, "layers.1.downsample.0")["kernel"] == 1


def test_shapes_follow_the_network_and_flat_tensors_have_unit_spatial_dims():
    cg = trace(SmallResNet(), input_shape=(1, 3, 32, 32))
    conv = node_of(cg, "layers.2.conv1")
    assert (conv["Cin"], conv["Hin"], conv["Win"]) == (32, 16, 16)
    assert (conv["Cout"], conv["Hout"], conv["Wout"]) == (64, 8, 8)
    fc = node_of(cg, "fc")
    assert (fc["Cin"], fc["Hin"], fc["Win"], fc["Cout"], fc["Hout"], fc["Wout"]) == (64, 1, 1, 10, 1, 1)


def test_shape_arithmetic_is_pruned_and_tensor_edges_kept():
    cg = trace(BranchyNet())
    names = [a["name"] for _, a in cg.graph.nodes(data=True)]
    assert "size" not in names
    view = [n for n, a in cg.graph.nodes(data=True) if a["name"] == "view"][0]
    assert [cg.graph.nodes[p]["op"] for p in cg.graph.predecessors(view)] == ["global_pool"]


def test_cat_functional_pooling_flatten_and_view_are_recognised():
    cg = trace(BranchyNet())
    ops = cg.op_types()
    assert ops.count("cat") == 1 and ops.count("global_pool") == 1 and ops.count("reshape") == 2
    assert "pool_max" in ops
    cat = node_of(cg, "cat")
    assert cat["Cout"] == 12
    depthwise = node_of(cg, "right.0")
    assert depthwise["groups"] == depthwise["Cin"] == 3


def test_pooling_over_the_whole_map_is_global_pool():
    class Pools(nn.Module):
        def __init__(self):
            super().__init__()
            self.fixed = nn.AvgPool2d(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fixed(x) + F.avg_pool2d(x, x.size()[2:]) + x.mean((2, 3), keepdim=True)

    cg = trace(Pools(), input_shape=(1, 4, 8, 8))
    assert cg.op_types().count("global_pool") == 3
    assert {a["kernel"] for _, a in cg.graph.nodes(data=True) if a["op"] == "global_pool"} == {8}
    assert {a["flops"] for _, a in cg.graph.nodes(data=True) if a["op"] == "global_pool"} == {4 * 8 * 8}


def test_input_without_spatial_dims_is_accepted():
    mlp = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    cg = trace(mlp, input_shape=(1, 20))
    first = node_of(cg, "0")
    assert (first["Cin"], first["Hin"], first["Win"], first["flops"]) == (20, 1, 1, 20 * 16)


# ----------------------------------------------------------------------------- totals
@pytest.mark.parametrize("model", [SmallResNet(), BranchyNet()], ids=["resnet", "branchy"])
def test_node_params_sum_to_model_parameters(model: nn.Module):
    cg = trace(model)
    assert cg.params == sum(p for _, p in cg.graph.nodes(data="params")) == n_params(model)
    assert cg.flops == sum(f for _, f in cg.graph.nodes(data="flops")) > 0


def test_parameters_read_in_forward_and_shared_modules_count_once():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.scale = nn.Parameter(torch.ones(1, 3, 1, 1))
            self.weight = nn.Parameter(torch.randn(3, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv(self.conv(x)) * self.scale
            return F.conv2d(x, self.weight, stride=2)

    model = Scaled()
    cg = trace(model)
    assert cg.params == n_params(model)
    functional = node_of(cg, "conv2d")
    assert (functional["op"], functional["params"], functional["stride"], functional["Hout"]) == ("conv", 9, 2, 16)
    assert functional["flops"] == 3 * 16 * 16 * 3 * 1 * 1


@settings(max_examples=25, deadline=None)
@given(
    c_in=st.integers(1, 4),
    mult=st.integers(1, 3),
    kernel=st.sampled_from([1, 3, 5]),
    stride=st.integers(1, 2),
    depthwise=st.booleans(),
    size=st.integers(5, 12),
)
def test_conv_flops_are_cout_hout_wout_cin_over_groups_k_k(c_in, mult, kernel, stride, depthwise, size):
    groups = c_in if depthwise else 1
    c_out = c_in * mult
    model = nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups))
    cg = trace(model, input_shape=(1, c_in, size, size))
    conv = node_of(cg, "0")
    h_out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    assert (conv["Hout"], conv["Wout"], conv["groups"], conv["kernel"]) == (h_out, h_out, groups, kernel)
    assert conv["flops"] == c_out * h_out * h_out * (c_in // groups) * kernel * kernel
    assert cg.params == n_params(model)


def test_multiplying_by_zero_is_the_zero_op():
    class Zero(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, ::2, ::2].mul(0.0)

    cg = trace(Zero())
    assert cg.op_types() == ["input", "slice", "zero", "output"]
    assert node_of(cg, "mul")["flops"] == 0


# ----------------------------------------------------------------------------- PyG
def test_to_pyg_layout_is_one_hot_op_then_log1p_numeric_features():
    cg = trace(SmallResNet())
    data = cg.to_pyg()
    n = cg.num_nodes
    assert (len(OP_TYPES), len(NUMERIC_FEATURES), NUM_NODE_FEATURES) == (29, 12, 41), "update the layout docs"
    assert data.x.shape == (n, NUM_NODE_FEATURES) and data.x.dtype == torch.float32
    one_hot, numeric = data.x[:, : len(OP_TYPES)], data.x[:, len(OP_TYPES) :]
    assert torch.equal(one_hot.sum(1), torch.ones(n))
    assert [OP_TYPES[i] for i in one_hot.argmax(1)] == cg.op_types() == [OP_TYPES[i] for i in data.op]
    expected = np.log1p([[a[k] for k in NUMERIC_FEATURES] for _, a in cg.graph.nodes(data=True)])
    np.testing.assert_allclose(numeric.numpy(), expected, rtol=1e-6)
    assert sorted(map(tuple, data.edge_index.t().tolist())) == sorted(cg.graph.edges)
    assert data.num_nodes == n
    assert data.params.item() == cg.params and data.flops.item() == cg.flops


def test_pyg_graphs_of_different_models_batch_together():
    graphs = [to_pyg(SmallResNet()), to_pyg(BranchyNet())]
    batch = Batch.from_data_list(graphs)
    assert batch.num_graphs == 2
    assert batch.x.shape[0] == sum(g.num_nodes for g in graphs)
    assert batch.params.tolist() == [g.params.item() for g in graphs]


# ----------------------------------------------------------------------------- errors
def test_untraceable_submodule_error_names_it_and_how_to_make_it_a_leaf():
    with pytest.raises(TraceError) as info:
        trace(GatedNet())
    message = str(info.value)
    assert "'body.1'" in message and "Gate" in message
    assert "leaf_modules=(Gate,)" in message
    assert isinstance(info.value, ValueError)


def test_leaf_modules_keep_an_untraceable_module_as_one_operator():
    model = GatedNet()
    cg = trace(model, leaf_modules=(Gate,))
    gate = node_of(cg, "body.1")
    assert gate["op"] == "other" and gate["params"] == n_params(model.body[1])
    assert cg.params == n_params(model)
    assert cg.op_types()[-2] == "global_pool"


def test_untraceable_model_forward_says_only_submodules_can_be_leaves():
    class Root(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(TraceError, match=r"model itself .*Root.*submodule"):
        trace(Root())


def test_wrong_input_shape_names_the_failing_module():
    with pytest.raises(ValueError, match=r"input_shape=\(1, 1, 32, 32\).*'stem.0' \(Conv2d\)"):
        trace(SmallResNet(), input_shape=(1, 1, 32, 32))


@pytest.mark.parametrize(
    "kwargs, field",
    [({"input_shape": (1, 3, 0, 32)}, "input_shape"), ({"leaf_modules": (nn.Conv2d(1, 1, 1),)}, "leaf_modules")],
)
def test_invalid_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        trace(SmallResNet(), **kwargs)


def test_extra_forward_arguments_take_their_defaults():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
            return self.conv(x) * scale

    class TwoInputs(Scaled):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + y

    assert trace(Scaled()).op_types() == ["input", "conv", "mul", "output"]
    with pytest.raises(ValueError, match="'y' has no default"):
        trace(TwoInputs())


def test_trace_leaves_the_model_train_flags_as_they_were():
    model = SmallResNet().train()
    model.fc.eval()
    trace(model)
    assert model.training and model.layers[0].bn1.training and not model.fc.training


def test_trace_restores_the_torch_thread_count():
    before = torch.get_num_threads()
    trace(BranchyNet())
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------- search spaces
SMALL_BUILD = {"C": 8, "N": 1, "layers": 5, "stem_channels": 16, "num_stacks": 2, "num_modules_per_stack": 1}


def _available_spaces() -> list[str]:
    from search_spaces import available_spaces

    return available_spaces()


@pytest.mark.parametrize("name", _available_spaces())
def test_sampled_network_of_every_space_traces(name: str):
    from search_spaces import get_space

    space = get_space(name)
    build_params = inspect.signature(space.build).parameters
    small = {k: v for k, v in SMALL_BUILD.items() if k in build_params}
    for seed in range(3):
        model = space.build(space.sample(seed), num_classes=10, in_shape=(3, 32, 32), **small)
        cg = trace(model)
        ops = cg.op_types()
        assert ops[0] == "input" and ops[-1] == "output" and "conv" in ops
        assert nx.is_directed_acyclic_graph(cg.graph)
        assert cg.params == n_params(model)
        assert cg.to_pyg().x.shape == (cg.num_nodes, NUM_NODE_FEATURES)
