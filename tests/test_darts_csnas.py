"""The official CSNAS cell space (``darts-csnas``): its 40-choice encoding, the genotype the
official parser derives, 5-node networks, the ``csnas-paper`` preset, the default of 10
label-free epochs, and the whole protocol (label-free TPE search, then ``raynas train --from``)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch

from cli_settings import cli_search_settings
from raynas.cli import main as cli_main
from raynas.retrain import preset_options
from search_spaces import get_space
from search_spaces.darts_csnas import CSNAS_OPS, EDGES, derive_cell, edge_key

SPACE = get_space("darts-csnas")


def test_the_space_has_40_choices_of_8_ops_over_20_edges_per_cell():
    domains = SPACE.tune_space()
    assert len(EDGES) == 20 and len(domains) == 40
    assert all(sorted(d.categories) == sorted(CSNAS_OPS) for d in domains.values())
    assert CSNAS_OPS[0] == "none" and len(CSNAS_OPS) == 8


def test_real_ops_outrank_none_and_ties_go_to_the_earlier_input():
    ops = ["none"] * 20
    # node 2 (edges 5..8, inputs 0..3): real ops on inputs 1 and 3 are kept over the none edges
    ops[6], ops[8] = "sep_conv_3x3", "dil_conv_5x5"
    # node 4 (edges 14..19, inputs 0..5): three real ops, the two earliest inputs are kept
    ops[15], ops[17], ops[19] = "skip_connect", "avg_pool_3x3", "sep_conv_5x5"
    cell = derive_cell(ops)
    assert cell[4:6] == (("sep_conv_3x3", 1), ("dil_conv_5x5", 3))
    assert cell[8:10] == (("skip_connect", 1), ("avg_pool_3x3", 3))
    # node 0 has only none edges: its two inputs, with the first non-none op
    assert cell[0:2] == (("max_pool_3x3", 0), ("max_pool_3x3", 1))
    # node 1 (edges 2..4): one real op on input 2, filled with the earliest none edge (input 0)
    ops[4] = "dil_conv_3x3"
    assert derive_cell(ops)[2:4] == (("max_pool_3x3", 0), ("dil_conv_3x3", 2))


def test_a_genotype_encodes_to_the_config_that_derives_it():
    arch = SPACE.sample(5)
    config = SPACE.encode(arch)
    assert sum(v != "none" for k, v in config.items() if k.startswith("normal")) == 10
    assert SPACE.decode(config) == arch
    assert str(arch).count("_concat=[3, 4, 5, 6]") == 2
    assert SPACE.parse(str(arch).replace("[3, 4, 5, 6]", "range(3, 7)")) == arch
    with pytest.raises(ValueError, match=r"\[3, 4, 5, 6\]"):
        SPACE.parse(str(arch).replace("[3, 4, 5, 6]", "[2, 3, 4, 5]"))


def test_the_network_concatenates_the_last_four_of_five_nodes():
    arch = SPACE.decode({edge_key(c, e): "sep_conv_3x3" for c in ("normal", "reduce") for e in range(20)})
    net = SPACE.build(arch, num_classes=3, in_shape=(1, 8, 8), C=4, layers=3)
    assert len(net.cells[0].ops) == 10
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    graph = SPACE.cell_graph(arch)
    outputs = [v for v, d in graph.nodes(data=True) if d["op"] == "output"]
    assert [graph.in_degree(v) for v in outputs] == [4, 4]


def test_csnas_paper_preset_sets_the_published_search(monkeypatch):
    s = cli_search_settings(monkeypatch, "--space", "darts-csnas", "--preset", "csnas-paper")
    assert (s.searcher, s.trainable, s.epochs, s.num_samples) == ("tpe", "selfsup", 10, 120)
    opts = s.trainer_options
    assert (opts["ssl_method"], opts["proj_dim"], opts["nce_negatives"], opts["batch_size"]) == ("pirl", 256, 510, 256)
    assert preset_options("auto", "darts-csnas") == preset_options("darts", "darts")


def test_selfsup_search_defaults_to_10_epochs_and_others_keep_theirs(monkeypatch):
    assert cli_search_settings(monkeypatch, "--space", "darts-csnas", "--trainable", "selfsup", "--searcher", "tpe").epochs == 10
    assert cli_search_settings(monkeypatch, "--space", "darts-csnas", "--searcher", "tpe").epochs == 4
    assert cli_search_settings(monkeypatch, "--space", "darts-csnas", "--trainable", "selfsup", "--epochs", "2").epochs == 2


def test_label_free_search_then_retraining_the_best_cell_runs_through_the_cli(ray_session, tmp_path, capsys):
    search = ["search", "--space", "darts-csnas", "--preset", "csnas-paper", "--dataset", "digits",
              "--num-samples", "2", "--epochs", "1", "--storage", str(tmp_path), "--name", "ssl",
              "--set", 'build={"C": 4, "layers": 2}', "--set", "data_portion=0.05", "--set", "batch_size=32",
              "--set", "nce_negatives=62"]  # fmt: skip
    assert cli_main(search) == 0
    trials = pq.read_table(tmp_path / "ssl" / "trials.parquet").to_pylist()
    assert len(trials) == 2 and all(r["ssl_loss"] > 0 for r in trials)
    best = min(trials, key=lambda r: r["ssl_loss"])["arch"]
    capsys.readouterr()
    train = ["train", "--from", str(tmp_path / "ssl"), "--top-k", "1", "--epochs", "1", "--name", "rt",
             "--set", 'build={"C": 4, "layers": 3}', "--set", "batch_size=128", "--set", "data_portion=0.3"]  # fmt: skip
    assert cli_main(train) == 0
    table = pq.read_table(tmp_path / "rt" / "trials.parquet").to_pylist()
    assert [r["arch"] for r in table] == [best] and 0 <= table[0]["test_acc"] <= 100
    saved = json.loads(next((tmp_path / "rt").glob("*settings*.json")).read_text())
    assert saved["trainer_options"]["build"] == {"C": 4, "layers": 3, "auxiliary": True}
    assert saved["trainer_options"]["auxiliary_weight"] == 0.4 and saved["trainer_options"]["drop_path"] == 0.2
