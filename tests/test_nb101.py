"""NB101 space: official hashes and parameter counts, validity rules, real networks, moves.

What every space must do (round trips, configs, moves, networks) is in test_space_contract.py."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import benchmark_file
from search_spaces import get_space
from search_spaces.nb101 import CONFIG_KEYS, EDGE_KEYS, OP_KEYS, prune

SPACE = get_space("nb101")
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# First record of the official nasbench_only108.tfrecord: its hash and parameter count are
# printed in microsoft/nni, docs/en_US/NAS/BenchmarksExample.ipynb (query_nb101_trial_stats:
# hash 00005c142e6f48ac74fdcf73e3439874, parameters 8.55553 M = 8,555,530 trainable).
FIRST_RECORD = (
    [[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
     [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C3, MP, C3, C3, C1, "output"],
    "00005c142e6f48ac74fdcf73e3439874",
    8_555_530,
)
# The Inception-like cell of the nasbench README: its hash is the graph_hash in
# google-research/unified_functional_hashing, nasbench/python/evaluator_test.py; its
# trainable_parameters (2,694,282) are in the README's query output, as reproduced in
# gary9987/tensorflow-get-started, gcn/NAS_BENCH_101.md.
README_CELL = (
    [[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
    ["input", C1, C3, C3, C3, MP, "output"],
    "28cfc7874f6d200472e1a9dcd8650aa0",
    2_694_282,
)


def param_count(arch, **hp) -> int:
    with torch.device("meta"):  # same modules, no memory or init time
        model = SPACE.build(arch, **hp)
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def nb101_table() -> list[dict]:
    path = benchmark_file("nb101_zc_naslib_subset.parquet")
    return pq.read_table(path, columns=["adjacency", "ops", "params"]).to_pylist()


@pytest.mark.parametrize("matrix, ops, expected_hash, tf_params", [FIRST_RECORD, README_CELL])
def test_key_and_parameter_count_match_published_nb101_values(matrix, ops, expected_hash, tf_params):
    arch = SPACE.from_matrix(matrix, ops)
    assert arch.key == expected_hash
    assert param_count(arch) == tf_params


def test_parameter_count_matches_table_for_a_sample(nb101_table):
    rows = np.random.default_rng(0).choice(len(nb101_table), size=30, replace=False)
    sizes = [len(SPACE.canonical(SPACE.arch_from_record(r)).spec[1]) for r in nb101_table]
    trivial = sizes.index(2)  # the input->output cell: only projections, no vertex ops
    for i in [*rows, trivial]:
        arch = SPACE.arch_from_record(nb101_table[i])
        assert param_count(arch) == pytest.approx(nb101_table[i]["params"] * 1e6, abs=0.5), str(arch)


def test_network_traces_with_torch_fx():
    model = SPACE.build(SPACE.from_matrix(*FIRST_RECORD[:2]), stem_channels=6, num_modules_per_stack=1)
    x = torch.randn(1, 3, 16, 16)
    traced = torch.fx.symbolic_trace(model.eval())
    torch.testing.assert_close(traced(x), model(x))


def permuted(matrix, ops, order):
    return [[matrix[a][b] for b in order] for a in order], [ops[v] for v in order]


def test_isomorphic_cells_share_the_key():
    rng = np.random.default_rng(3)
    for _ in range(20):
        matrix, ops = SPACE.canonical(SPACE.sample(rng)).spec
        graph = nx.DiGraph([(i, j) for i, row in enumerate(matrix) for j, x in enumerate(row) if x])
        orders = list(itertools.islice(nx.all_topological_sorts(graph), 50))
        other = SPACE.from_matrix(*permuted(matrix, ops, orders[int(rng.integers(len(orders)))]))
        assert other == SPACE.from_matrix(matrix, ops)
    a = SPACE.parse("adj=0110/0001/0001/0000;ops=input,conv3x3-bn-relu,maxpool3x3,output")
    b = SPACE.parse("adj=0110/0001/0001/0000;ops=input,maxpool3x3,conv3x3-bn-relu,output")
    c = SPACE.parse("adj=0110/0001/0001/0000;ops=input,maxpool3x3,conv1x1-bn-relu,output")
    assert a == b and not a.same_spec(b) and a != c


def test_vertices_off_every_input_output_path_are_pruned():
    # vertex 2 is fed by the input but feeds nothing; vertex 3 feeds the output but is unreachable
    arch = SPACE.parse(f"adj=01100/00001/00000/00001/00000;ops=input,{C3},{MP},{C1},output")
    small = SPACE.parse("adj=010/001/000;ops=input,conv3x3-bn-relu,output")
    assert arch == small
    assert str(SPACE.canonical(arch)) == str(small)
    assert [d["op"] for _, d in SPACE.cell_graph(arch).nodes(data=True)] == ["input", C3, "output"]
    assert param_count(arch) == param_count(small)


def test_edge_limit_counts_edges_after_pruning():
    # 11 raw edges, but the 3 into vertex 5 are pruned away (5 does not reach the output)
    dangling = "adj=0111110/0000011/0000011/0000001/0000001/0000000/0000000"
    assert SPACE.is_valid(SPACE.parse(f"{dangling};ops=input,{C3},{C3},{C3},{C3},{C3},output"))
    with pytest.raises(ValueError, match="adj: 11 edges after pruning; at most 9"):
        SPACE.parse("adj=0111111/0000001/0000001/0000001/0000001/0000001/0000000;"
                    f"ops=input,{C3},{C3},{C3},{C3},{C3},output")


def test_smaller_cells_encode_as_seven_vertex_configs():
    arch = SPACE.parse("adj=011/001/000;ops=input,maxpool3x3,output")
    config = SPACE.encode(arch)
    assert sorted(config) == sorted(CONFIG_KEYS)
    assert SPACE.decode(config) == arch


def test_tune_space_has_21_edge_bits_and_5_ops():
    domains = SPACE.tune_space()
    assert list(domains) == list(CONFIG_KEYS) and len(EDGE_KEYS) == 21 and len(OP_KEYS) == 5
    config = {k: d.sample() for k, d in domains.items()}
    assert all(config[k] in (0, 1) for k in EDGE_KEYS)


def config_of(text: str) -> dict:
    return SPACE.encode(SPACE.parse(text))


VALID7 = f"adj=0100000/0010000/0001000/0000100/0000010/0000001/0000000;ops=input,{C3},{C3},{C3},{C3},{C3},output"


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"adj_0_1": 2}, r"adj_0_1: 2 is not allowed; allowed values are \[0, 1\]"),
        ({"adj_2_5": "1"}, r"adj_2_5: '1' is not allowed; allowed values are \[0, 1\]"),
        ({"adj_3_4": 0.5}, r"adj_3_4: 0.5 is not allowed"),
        ({"op_3": "conv5x5"}, r"op_3: 'conv5x5' is not allowed; allowed values are \['conv3x3-bn-relu'"),
        ({"adj_0_1": 0}, r"adj: the input does not reach the output"),
        ({f"adj_{i}_6": 1 for i in range(1, 5)} | {"adj_0_2": 1, "adj_0_3": 1}, r"adj: 12 edges after pruning"),
    ],
)
def test_invalid_configs_name_the_field(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        SPACE.decode({**config_of(VALID7), **change})


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("adj=01/00", r"must be 'adj=<rows>;ops=<ops>'"),
        ("ops=input,output;adj=01/00", r"must be 'adj=<rows>;ops=<ops>'"),
        ("adj=01/0;ops=input,output", r"adj row 1 '0' must be 2 digits 0/1"),
        ("adj=02/00;ops=input,output", r"adj row 0 '02' must be 2 digits 0/1"),
        ("adj=01/10;ops=input,output", r"adj\[1\]\[0\]: the matrix must be upper triangular"),
        ("adj=011/001/000;ops=input,output", r"adj: must be a 2x2"),
        ("adj=011/001/000;ops=input,conv7x7,output", r"ops\[1\]: 'conv7x7' is not allowed; allowed values are"),
        (f"adj=011/001/000;ops={C3},{MP},output", r"ops: the first op must be 'input' and the last 'output'"),
        ("adj=011/001/000;ops=input,maxpool3x3,maxpool3x3", r"ops: the first op must be 'input'"),
        ("adj=010/000/000;ops=input,maxpool3x3,output", r"adj: the input does not reach the output"),
        ("adj=" + "/".join(["0" * 8] * 8) + f";ops=input,{','.join([C3] * 6)},output", r"ops: need a tuple of 2..7"),
    ],
)
def test_malformed_arch_strings_are_rejected_with_the_reason(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        SPACE.parse(text)


def test_sample_yields_only_valid_seven_vertex_cells():
    rng = np.random.default_rng(5)
    archs = [SPACE.sample(rng) for _ in range(200)]
    assert all(SPACE.is_valid(a) and len(a.spec[1]) == 7 for a in archs)
    pruned = [prune(*a.spec) for a in archs]
    assert all(p is not None and sum(map(sum, p[0])) <= 9 for p in pruned)
    assert len(set(archs)) > 100  # NB101's sampler favours small pruned cells, so keys repeat


def test_neighbors_are_one_edit_cells():
    arch = SPACE.from_matrix(*README_CELL[:2])
    neighbors = SPACE.neighbors(arch)
    assert len(neighbors) > 10
    matrix, ops = np.array(arch.spec[0]), arch.spec[1]
    for n in neighbors:
        edits = int((np.array(n.spec[0]) != matrix).sum()) + sum(a != b for a, b in zip(n.spec[1], ops))
        assert edits == 1
    # growing the trivial cell takes two new edges, so only mutate (several flips) leaves it
    assert SPACE.neighbors(SPACE.parse("adj=01/00;ops=input,output")) == []


def test_enumerate_yields_pruned_cells():
    archs = list(itertools.islice(SPACE.enumerate(), 300))
    assert all(SPACE.canonical(a).same_spec(a) for a in archs)


def test_table_rows_read_through_arch_from_record(nb101_table):
    archs = [SPACE.arch_from_record(r) for r in nb101_table]
    trivial = [a for a in archs if len(SPACE.canonical(a).spec[1]) == 2]
    assert len(trivial) == 55 and len(set(trivial)) == 1
    assert SPACE.record_columns()[:2] == ["adjacency", "ops"]


def test_build_rejects_unknown_or_bad_options():
    arch = SPACE.from_matrix(*README_CELL[:2])
    with pytest.raises(ValueError, match=r"unknown NB101 build options \['width'\]"):
        SPACE.build(arch, width=3)
    with pytest.raises(ValueError, match=r"num_stacks: 0 is not allowed; it must be a positive int"):
        SPACE.build(arch, num_stacks=0)
    with pytest.raises(ValueError, match=r"in_shape: \(32, 32\) is not allowed"):
        SPACE.build(arch, in_shape=(32, 32))
