"""YAHPO Gym's NB301 surrogate fed raynas's DARTS cells (skips without the shared copy)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import benchmark_file
from scipy.stats import spearmanr

from raynas.benchmarks import TabularBenchmark
from raynas.nb301_surrogate import INPUT_NAMES, MISSING, PREFIX, NB301Surrogate
from search_spaces import get_space

GENOTYPE = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), "
    "('sep_conv_5x5', 1), ('dil_conv_3x3', 3), ('max_pool_3x3', 0), ('avg_pool_3x3', 4)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


@pytest.fixture(scope="module")
def surrogate() -> NB301Surrogate:
    return NB301Surrogate(benchmark_file("yahpo_nb301_v2"), threads=1)


def test_a_cell_becomes_yahpos_edges_and_input_pairs(surrogate):
    codes = dict(zip(INPUT_NAMES, surrogate.encode(GENOTYPE)))
    decoded = {name: next(v for v, c in surrogate.encoding[name].items() if c == code) for name, code in codes.items()}
    normal = {k[len(PREFIX) :]: v for k, v in decoded.items() if "normal" in k and v != MISSING}
    # node 3 (edges 2..4 from states 0, 1, 2) reads states 0 and 2; node 5 (edges 9..13) reads 0 and 4
    assert normal["edge_normal_2"] == "skip_connect" and normal["edge_normal_4"] == "sep_conv_3x3"
    assert normal["edge_normal_9"] == "max_pool_3x3" and normal["edge_normal_13"] == "avg_pool_3x3"
    assert normal["inputs_node_normal_3"] == "0_2" and normal["inputs_node_normal_5"] == "0_4"
    edges = [v for k, v in decoded.items() if "_edge_" in k]
    assert sum(v != MISSING for v in edges) == 16  # two ops per node, four nodes, two cells


def test_it_ranks_naslibs_nb301_cells_and_learns_with_epochs(surrogate):
    table = TabularBenchmark.from_parquet(benchmark_file("nb301_zc_naslib_subset.parquet"), "darts", "cifar10")
    final = surrogate.predict(table.archs)
    assert np.all((final > 80) & (final < 100))
    assert spearmanr(final, table.column("valid"))[0] > 0.5  # two surrogates of the same benchmark agree
    assert np.mean(surrogate.predict(table.archs[:50], epoch=5)) < np.mean(final[:50]) - 5


def test_wrong_input_is_named(surrogate, tmp_path):
    with pytest.raises(ValueError, match="DARTS cells, not nb201"):
        surrogate.predict([get_space("nb201").sample(0)])
    with pytest.raises(ValueError, match="outside the surrogate's range 1..98"):
        surrogate.predict([GENOTYPE], epoch=200)
    with pytest.raises(FileNotFoundError, match="lacks model_v2.onnx, encoding_v2.json"):
        NB301Surrogate(tmp_path)
