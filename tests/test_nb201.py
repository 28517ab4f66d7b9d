"""NB201 space: official strings and order, real networks, canonical classes, bad input.

What every space must do (round trips, configs, moves, networks) is in test_space_contract.py."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import benchmark_file
from search_spaces import get_space
from search_spaces.nb201 import CONFIG_KEYS, NUM_ARCHS

SPACE = get_space("nb201")


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


def test_tune_space_has_one_key_per_edge_in_order():
    assert list(SPACE.tune_space()) == list(CONFIG_KEYS)


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


def test_mutate_is_one_of_the_neighbors():
    rng = np.random.default_rng(1)
    arch = SPACE.from_index(6111)
    neighbors = SPACE.neighbors(arch)
    assert len(neighbors) > 10
    for _ in range(20):
        assert SPACE.mutate(arch, rng) in neighbors


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
