"""NB201 space: official strings and order, real networks, canonical classes, bad input."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from ray.tune.search.sample import Domain

from conftest import benchmark_file
from search_spaces import get_space
from search_spaces.nb201 import CONFIG_KEYS, NUM_ARCHS

SPACE = get_space("nb201")
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module")
def nb201_table() -> dict:
    path = benchmark_file("nb201_all.parquet")
    return pq.read_table(path, columns=["index", "arch_str", "params_m"]).to_pydict()


def test_from_index_formats_to_every_official_arch_string(nb201_table):
    got = [str(SPACE.from_index(i)) for i in nb201_table["index"]]
    assert got == nb201_table["arch_str"]
    assert len(got) == NUM_ARCHS


def test_index_inverts_from_index():
    for i in (0, 9, 123, 6111, NUM_ARCHS - 1):
        assert SPACE.index(SPACE.from_index(i)) == i


def test_parameter_count_matches_table_for_a_sample(nb201_table):
    rows = np.random.default_rng(0).choice(NUM_ARCHS, size=40, replace=False)
    for i in rows:
        model = SPACE.build(SPACE.from_index(int(i)), num_classes=10)
        count = sum(p.numel() for p in model.parameters())
        assert count == round(nb201_table["params_m"][i] * 1e6), SPACE.from_index(int(i))


@pytest.mark.parametrize("in_shape, num_classes", [((3, 32, 32), 10), ((1, 8, 8), 7)])
def test_network_maps_images_to_logits(in_shape, num_classes):
    arch = SPACE.from_index(6111)
    model = SPACE.build(arch, num_classes=num_classes, in_shape=in_shape, C=8, N=1)
    out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, num_classes)
    out.sum().backward()


def test_swapping_parallel_intermediate_nodes_keeps_the_key():
    a = SPACE.parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    b = SPACE.parse("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert a == b and hash(a) == hash(b) and not a.same_spec(b)
    assert SPACE.canonical(a).same_spec(SPACE.canonical(b))


def test_edges_that_cannot_reach_the_output_do_not_change_the_key():
    # node 2 never reaches the output (3<-2 is none), so edges into it are dead
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    b = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    assert a == b
    c = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert a != c


def test_cells_with_unreachable_output_form_one_class():
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|")
    b = SPACE.parse("|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")
    assert a == b


def test_canonical_representatives_and_keys_define_the_same_classes():
    archs = list(SPACE.enumerate())
    keys = {a.key for a in archs}
    reps = {SPACE.canonical(a).text for a in archs}
    assert len(keys) == len(reps)
    assert all(SPACE.canonical(a) == a for a in archs[:500])


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_string_and_config_round_trip(seed):
    arch = SPACE.sample(seed)
    again = SPACE.parse(str(arch))
    assert again.same_spec(arch)
    assert SPACE.decode(SPACE.encode(arch)).same_spec(arch)
    config = {**SPACE.encode(arch), "lr": 0.1, "epochs": 3}  # trainer keys ride along
    assert SPACE.decode(config).same_spec(arch)


def test_tune_space_is_plain_tune_domains_that_decode():
    domains = SPACE.tune_space()
    assert list(domains) == list(CONFIG_KEYS)
    assert all(isinstance(d, Domain) for d in domains.values())
    config = {k: d.sample() for k, d in domains.items()}
    assert SPACE.is_valid(SPACE.decode(config))


@pytest.mark.parametrize(
    "text, words",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", ["3 nodes"]),
        ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["conv_7x7", "nor_conv_3x3"]),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", ["node 2", "2 edges"]),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", ["input must be 0"]),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["'|'"]),
        ("|none-0|+|none~0|none~1|+|none~0|none~1|none~2|", ["op~0"]),
    ],
)
def test_malformed_arch_strings_are_rejected_with_the_reason(text, words):
    with pytest.raises(ValueError) as err:
        SPACE.parse(text)
    for word in words:
        assert word in str(err.value)


def test_bad_configs_name_the_key_and_the_allowed_values():
    config = SPACE.encode(SPACE.from_index(0))
    with pytest.raises(ValueError, match="edge_2_1.*'conv'.*allowed values"):
        SPACE.decode({**config, "edge_2_1": "conv"})
    del config["edge_3_2"]
    with pytest.raises(ValueError, match="missing keys \\['edge_3_2'\\]"):
        SPACE.decode(config)


def test_mutate_and_neighbors_give_valid_different_architectures():
    rng = np.random.default_rng(1)
    arch = SPACE.from_index(6111)
    neighbors = SPACE.neighbors(arch)
    assert len(neighbors) == len(set(neighbors)) > 10
    assert all(SPACE.is_valid(n) and n != arch for n in neighbors)
    for _ in range(20):
        child = SPACE.mutate(arch, rng)
        assert child != arch and child in neighbors


def test_build_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown NB201 build options \\['width'\\]"):
        SPACE.build(SPACE.from_index(0), width=3)


def test_cell_graph_holds_only_live_ops():
    arch = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    ops = sorted(d["op"] for _, d in SPACE.cell_graph(arch).nodes(data=True))
    assert ops == sorted(["input", "nor_conv_3x3", "sum", "skip_connect", "nor_conv_1x1", "output"])


def test_cells_the_canonical_form_calls_dead_are_exactly_the_chance_level_rows():
    import pyarrow.parquet as pq

    from search_spaces.nb201 import ZERO_CELL_KEY

    table = pq.read_table(benchmark_file("nb201_all.parquet"), columns=["cifar10_test_acc"]).column(0).to_pylist()
    dead = [acc for arch, acc in zip(SPACE.enumerate(), table) if arch.key == ZERO_CELL_KEY]
    alive = [acc for arch, acc in zip(SPACE.enumerate(), table) if arch.key != ZERO_CELL_KEY]
    assert len(dead) == 341 and set(dead) == {10.0}
    assert min(alive) > 40
