"""DARTS / NB301 space: Genotype strings, configs, canonical keys, search moves, real networks.

What every space must do (round trips, configs, moves, networks) is in test_space_contract.py."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import benchmark_file
from search_spaces import get_space
from search_spaces.darts import CONFIG_KEYS, NB301_TABLE_SETTINGS, RECORD_COLUMNS, allowed_inputs, allowed_pairs
from search_spaces.darts_net import OPS, drop_path

SPACE = get_space("darts")
seeds = st.integers(min_value=0, max_value=2**32 - 1)
SMALL = {"C": 4, "layers": 3}  # one cell per stage: fast, and both cell types are used

# DARTS_V2 from the DARTS repository's genotypes.py, as str() prints it
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def params(model: torch.nn.Module, skip: str = "\0") -> int:
    return sum(p.numel() for name, p in model.named_parameters() if skip not in name)


def swap_pairs(spec, rng: np.random.Generator):
    """Randomly swap the two (op, input) pairs of each node: the same function."""
    cells = []
    for cell in spec:
        out = []
        for k in range(4):
            pair = list(cell[2 * k : 2 * k + 2])
            out.extend(pair[::-1] if rng.random() < 0.5 else pair)
        cells.append(tuple(out))
    return tuple(cells)


# ---------------------------------------------------------------------------- networks
@pytest.fixture(scope="module")
def nb301_rows() -> list[dict]:
    path = benchmark_file("nb301_zc_naslib_subset.parquet")
    return pq.read_table(path, columns=[*RECORD_COLUMNS, "params"]).to_pylist()


def test_parameter_count_matches_the_naslib_nb301_table_for_a_sample(nb301_rows):
    rows = np.random.default_rng(0).choice(len(nb301_rows), size=20, replace=False)
    for i in rows:
        arch = SPACE.arch_from_record(nb301_rows[i])
        count = params(SPACE.build(arch, **NB301_TABLE_SETTINGS))
        assert count == round(nb301_rows[i]["params"] * 1e6), (i, str(arch))


def test_darts_v2_eval_network_has_the_published_parameter_count():
    model = SPACE.build(SPACE.parse(DARTS_V2), auxiliary=True)
    # DARTS' train.py logs "param size = 3.349342MB" (auxiliary head excluded)
    assert params(model, skip="auxiliary") == 3_349_342


@pytest.mark.parametrize(
    "in_shape, num_classes", [((3, 32, 32), 10), ((1, 28, 28), 7), ((3, 15, 15), 5)]
)
def test_network_maps_images_to_logits(in_shape, num_classes):
    model = SPACE.build(SPACE.sample(0), num_classes=num_classes, in_shape=in_shape, auxiliary=True, **SMALL)
    model.train()
    out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, num_classes) and model.aux_logits.shape == (2, num_classes)
    (out.sum() + model.aux_logits.sum()).backward()
    model.eval()
    assert model(torch.randn(2, *in_shape)).shape == (2, num_classes) and model.aux_logits is None


def test_nb301_table_settings_build_a_working_network():
    model = SPACE.build(SPACE.sample(1), **NB301_TABLE_SETTINGS).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_drop_path_is_random_in_training_and_off_in_eval():
    model = SPACE.build(SPACE.parse(DARTS_V2), drop_path_prob=0.5, **SMALL)
    x = torch.randn(4, 3, 16, 16)
    model.train()
    runs = []
    for seed in (0, 1, 0):
        torch.manual_seed(seed)
        runs.append(model(x))
    assert not torch.allclose(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    model.eval()
    with_drop = model(x)
    model.drop_path_prob = 0.0
    assert torch.equal(with_drop, model(x))


def test_drop_path_zeroes_whole_samples_and_keeps_the_mean():
    torch.manual_seed(0)
    out = drop_path(torch.ones(4000, 2, 3, 3), 0.25)
    per_sample = out.flatten(1)
    assert per_sample.unique().tolist() == pytest.approx([0.0, 4 / 3])
    assert torch.equal(per_sample.min(1).values, per_sample.max(1).values)
    assert out.mean().item() == pytest.approx(1.0, abs=0.05)


def test_build_rejects_unknown_options():
    with pytest.raises(ValueError, match=r"unknown DARTS build options \['width'\].*allowed: C, layers"):
        SPACE.build(SPACE.sample(0), width=3)


# ---------------------------------------------------------------------------- strings and configs
def test_darts_genotype_strings_round_trip_and_accept_range_concat():
    arch = SPACE.parse(DARTS_V2)
    assert str(arch) == DARTS_V2
    with_range = DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)").replace("'", '"')
    assert SPACE.parse(with_range).same_spec(arch)


def ascending(spec) -> bool:
    return all(cell[2 * k][1] < cell[2 * k + 1][1] for cell in spec for k in range(4))


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_samples_list_each_nodes_pairs_by_input(seed):
    # as configs do, so decode(encode(sample)) repeats the sample exactly (test_space_contract.py);
    # canonical specs order a node's pairs by (op, input), so a config may reorder those
    assert ascending(SPACE.sample(seed).spec)


@settings(max_examples=40, deadline=None)
@given(seeds)
def test_config_round_trip_sorts_each_nodes_pairs_and_keeps_the_function(seed):
    arch = SPACE.make(swap_pairs(SPACE.sample(seed).spec, np.random.default_rng(seed)))
    config = SPACE.encode(arch)
    back = SPACE.decode(config)
    assert back == arch and ascending(back.spec)
    assert back.same_spec(arch) == ascending(arch.spec)
    assert SPACE.encode(back) == config


def test_config_ops_follow_the_smaller_then_the_larger_input():
    arch = SPACE.parse(DARTS_V2)
    config = SPACE.encode(arch)
    # normal node 2 is [('sep_conv_3x3', 1), ('skip_connect', 0)]: the op on input 0 comes first
    assert (config["normal_inputs_2"], config["normal_op_4"], config["normal_op_5"]) == (
        "0_1", "skip_connect", "sep_conv_3x3")
    # reduce node 3 is [('skip_connect', 2), ('max_pool_3x3', 1)]
    assert (config["reduce_inputs_3"], config["reduce_op_6"], config["reduce_op_7"]) == (
        "1_2", "max_pool_3x3", "skip_connect")
    assert config["reduce_inputs_1"] == "1_2" and config["reduce_op_2"] == "max_pool_3x3"
    back = SPACE.decode(config)
    assert back == arch and not back.same_spec(arch)
    assert back.spec[0][4:6] == (("skip_connect", 0), ("sep_conv_3x3", 1))


def test_tune_space_holds_a_plain_domain_per_key_with_the_allowed_values():
    domains = SPACE.tune_space()
    assert list(domains) == list(CONFIG_KEYS) and len(CONFIG_KEYS) == 24
    assert list(domains)[:12] == [f"normal_op_{j}" for j in range(8)] + [f"normal_inputs_{k}" for k in range(4)]
    assert domains["normal_op_5"].categories == list(OPS)
    assert [domains[f"reduce_inputs_{k}"].categories for k in range(2)] == [["0_1"], ["0_1", "0_2", "1_2"]]
    for k in range(4):
        pairs = domains[f"normal_inputs_{k}"].categories
        assert pairs == allowed_pairs(k) and len(pairs) == (k + 2) * (k + 1) // 2
        assert all(int(i) < int(j) <= k + 1 for i, j in (p.split("_") for p in pairs))
    config = SPACE.encode(SPACE.sample(3))
    assert all(config[k] in d.categories for k, d in domains.items())


@st.composite
def domain_configs(draw):
    """A config drawing every key's value from its own domain, independently (as TPE etc. do)."""
    return {key: draw(st.sampled_from(domain.categories)) for key, domain in SPACE.tune_space().items()}


@settings(max_examples=150, deadline=None)
@given(domain_configs())
def test_every_combination_of_domain_values_decodes_to_a_valid_arch(config):
    arch = SPACE.decode(config)
    assert SPACE.is_valid(arch) and ascending(arch.spec)
    assert SPACE.encode(arch) == config  # configs and pair-sorted genotypes correspond 1:1
    assert SPACE.parse(str(arch)).same_spec(arch)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t.replace("Genotype(", "Geno("), ["not a Genotype"]),
        (lambda t: t.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"), ["normal_concat", "[2, 3, 4, 5]"]),
        (lambda t: t.replace("('dil_conv_3x3', 2)], normal", "], normal"), ["normal cell needs 8", "got 7"]),
        (lambda t: t.replace("('skip_connect', 2), ('skip_connect', 2)", "(skip, 2), ('skip_connect', 2)"), ["reduce cell", "pairs"]),
        (lambda t: t.replace("('dil_conv_3x3', 2)", "('conv_7x7', 2)"), ["normal entry 7 op", "conv_7x7", "sep_conv_5x5"]),
        (lambda t: t.replace("normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 2)"), ["normal entry 1 input", "[0, 1]"]),
        (lambda t: t.replace("('skip_connect', 2), ('max_pool_3x3', 1)]", "('skip_connect', 9), ('max_pool_3x3', 1)]"), ["reduce entry 6 input", "[0, 1, 2, 3, 4]"]),
        (lambda t: t.replace("[('max_pool_3x3', 0), ('max_pool_3x3', 1)", "[('max_pool_3x3', 1), ('max_pool_3x3', 1)"), ["reduce node 0 (entries 0 and 1)", "both inputs are 1", "differ"]),
    ],
)
def test_malformed_arch_strings_are_rejected_with_the_reason(edit, words):
    text = edit(DARTS_V2)
    assert text != DARTS_V2
    with pytest.raises(ValueError) as err:
        SPACE.parse(text)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "key, value", [("reduce_inputs_2", "1_1"), ("normal_inputs_1", "2_0"), ("reduce_inputs_3", "0_9"),
                   ("normal_inputs_2", 3), ("normal_inputs_3", "a_b"), ("normal_inputs_0", (0, 1)),
                   ("reduce_inputs_1", "0_3")],
)
def test_bad_input_pairs_name_the_key_and_the_allowed_pairs(key, value):
    config = SPACE.encode(SPACE.parse(DARTS_V2))
    k = int(key[-1])
    with pytest.raises(ValueError) as err:
        SPACE.decode({**config, key: value})
    assert str(err.value) == f"{key}: {value!r} is not allowed; allowed values are {allowed_pairs(k)}"


def test_bad_configs_name_the_key_and_the_allowed_values():
    config = SPACE.encode(SPACE.parse(DARTS_V2))
    with pytest.raises(ValueError, match=r"normal_op_3: 'conv'.*allowed values are \['max_pool_3x3'"):
        SPACE.decode({**config, "normal_op_3": "conv"})
    with pytest.raises(ValueError, match=r"reduce_inputs_1: '1_2 ' is not allowed; allowed values are \['0_1', '0_2', '1_2'\]"):
        SPACE.decode({**config, "reduce_inputs_1": "1_2 "})
    del config["reduce_op_7"], config["normal_inputs_3"]
    with pytest.raises(ValueError, match=r"missing keys \['normal_inputs_3', 'reduce_op_7'\]"):
        SPACE.decode(config)
    old_style = {f"{c}_{kind}_{j}": ("skip_connect" if kind == "op" else j // 2)
                 for c in ("normal", "reduce") for kind in ("op", "in") for j in range(8)}
    with pytest.raises(ValueError, match=r"missing keys \['normal_inputs_0', 'normal_inputs_1'"):
        SPACE.decode(old_style)


def test_nb301_tables_and_the_nb301_name_give_the_same_darts_values(nb301_rows):
    nb301 = get_space("nb301")
    arch = nb301.arch_from_record(nb301_rows[0])
    assert arch.space == "darts" and arch == SPACE.parse(str(arch))
    assert [p[1] for p in arch.spec[0]] == list(nb301_rows[0]["normal_inputs"])


# ---------------------------------------------------------------------------- canonical keys
@settings(max_examples=40, deadline=None)
@given(seeds)
def test_key_ignores_the_order_of_a_nodes_two_pairs(seed):
    arch = SPACE.sample(seed)
    swapped = SPACE.make(swap_pairs(arch.spec, np.random.default_rng(seed)))
    assert swapped == arch and hash(swapped) == hash(arch)
    assert SPACE.canonical(swapped).same_spec(SPACE.canonical(arch))


def test_renumbering_independent_nodes_keeps_the_key():
    # nodes 0 and 1 read only the cell inputs; exchanging them (and the references to them)
    # only permutes the concatenated channels, which the next 1x1 conv absorbs
    reduce = SPACE.parse(DARTS_V2).spec[1]
    a = (("sep_conv_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_5x5", 0), ("avg_pool_3x3", 1),
         ("skip_connect", 2), ("sep_conv_5x5", 1), ("dil_conv_3x3", 3), ("sep_conv_3x3", 2))
    b = (("dil_conv_5x5", 0), ("avg_pool_3x3", 1), ("sep_conv_3x3", 0), ("max_pool_3x3", 1),
         ("skip_connect", 3), ("sep_conv_5x5", 1), ("dil_conv_3x3", 2), ("sep_conv_3x3", 3))
    arch_a, arch_b = SPACE.make((a, reduce)), SPACE.make((b, reduce))
    assert arch_a == arch_b and not arch_a.same_spec(arch_b)
    c = b[:4] + (("skip_connect", 2),) + b[5:]  # node 2 now reads the other node
    assert SPACE.make((c, reduce)) != arch_a


# ---------------------------------------------------------------------------- search moves
def test_samples_are_valid_and_varied():
    archs = [SPACE.sample(s) for s in range(200)]
    assert all(SPACE.is_valid(a) and ascending(a.spec) for a in archs)
    assert len(set(archs)) == 200
    pairs = {(c, k, a.spec[c][2 * k][1], a.spec[c][2 * k + 1][1]) for a in archs for c in (0, 1) for k in range(4)}
    assert pairs == {
        (c, k, i, j) for c in (0, 1) for k in range(4) for i in allowed_inputs(2 * k) for j in allowed_inputs(2 * k) if i < j
    }


def test_neighbors_are_single_edits():
    arch = SPACE.parse(DARTS_V2)
    neighbors = SPACE.neighbors(arch)
    assert 100 < len(neighbors) <= 2 * (8 * 6 + 0 + 2 + 4 + 6)
    for n in neighbors:
        changed = [(c, j) for c in (0, 1) for j in range(8) if n.spec[c][j] != arch.spec[c][j]]
        assert len(changed) == 1


def test_mutate_returns_a_different_valid_neighbor():
    rng = np.random.default_rng(1)
    arch = SPACE.sample(7)
    neighbors = set(SPACE.neighbors(arch))
    children = [SPACE.mutate(arch, rng) for _ in range(50)]
    assert all(SPACE.is_valid(c) and c != arch and c in neighbors for c in children)
    assert len(set(children)) > 20


# ---------------------------------------------------------------------------- graphs
def test_cell_graph_holds_both_cells_with_ops_sums_and_outputs():
    arch = SPACE.parse(DARTS_V2)
    graph = SPACE.cell_graph(arch)
    assert graph.number_of_nodes() == 30
    assert nx.number_weakly_connected_components(graph) == 2
    for c, name in enumerate(("normal", "reduce")):
        ops = sorted(d["op"] for _, d in graph.nodes(data=True) if d["cell"] == name)
        assert ops == sorted(["input"] * 2 + ["sum"] * 4 + ["output"] + [op for op, _ in arch.spec[c]])
    swapped = SPACE.cell_graph(SPACE.make(swap_pairs(arch.spec, np.random.default_rng(0))))
    assert nx.is_isomorphic(graph, swapped, node_match=lambda x, y: x == y)
