"""Computation-graph predictor: graphs from archs and modules, caching, fit/predict, pre-training, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from predictors.cg import CGPredictor
from predictors.cg_data import GraphCache, GraphReader
from raynas.graph import TraceError, trace
from raynas.graph_features import OP_INDEX
from search_spaces import get_space

SPACE = get_space("nb201")
SMALL = {"hidden": 32, "layers": 2, "embed_dim": 32, "n_heads": 3, "batch_size": 16, "use_ray": False}


def user_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


class ValueBranch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


@pytest.fixture(scope="module")
def archs():
    return SPACE.sample_unique(64, 0)


@pytest.fixture(scope="module")
def conv_count(archs):
    """A learnable target: the number of convolutions in each arch's graph."""
    graphs = GraphReader(use_ray=False).graphs(archs)
    return np.array([float((g.x[:, OP_INDEX["conv"]] > 0).sum()) for g in graphs])


@pytest.fixture(scope="module")
def fitted(archs, conv_count):
    return CGPredictor(epochs=25, seed=0, **SMALL).fit(archs[:40], conv_count[:40])


def test_predicts_nb201_archs_and_a_user_sequential_cnn(fitted, archs):
    mean, std = fitted.predict([*archs[40:44], user_cnn(), trace(user_cnn())])
    assert mean.shape == std.shape == (6,)
    assert np.all(np.isfinite(mean)) and np.all(std >= 0)


def test_fit_ranks_a_learnable_target_better_than_an_untrained_network(fitted, archs, conv_count):
    untrained = CGPredictor(epochs=1, lr=1e-12, seed=0, **SMALL).fit(archs[:40], conv_count[:40])
    held_out = archs[40:]
    srcc_fit = spearmanr(fitted.predict(held_out)[0], conv_count[40:])[0]
    srcc_untrained = spearmanr(untrained.predict(held_out)[0], conv_count[40:])[0]
    assert srcc_fit > 0.8 and srcc_fit > srcc_untrained + 0.1


def test_predictions_are_in_label_units(fitted, archs, conv_count):
    mean, _ = fitted.predict(archs[:40])
    assert conv_count[:40].min() <= mean.min() and mean.max() <= conv_count[:40].max()


@pytest.mark.parametrize("loss,label_norm", [("mse", "zscore"), ("listwise", "none")])
def test_every_loss_and_label_normalisation_fits(archs, conv_count, loss, label_norm):
    model = CGPredictor(epochs=3, loss=loss, label_norm=label_norm, **SMALL).fit(archs[:24], conv_count[:24])
    assert np.all(np.isfinite(model.predict(archs[24:30])[0]))


def test_groups_normalise_labels_separately_and_take_batch_shares(archs, conv_count):
    groups = ["a"] * 12 + ["b"] * 12
    shifted = conv_count[:24] + np.where(np.array(groups) == "b", 100.0, 0.0)
    model = CGPredictor(epochs=2, **SMALL).fit(archs[:24], shifted, groups=groups, group_share={"b": 3.0})
    assert model.groups_["b"]["mean"] - model.groups_["a"]["mean"] > 90
    mean_b, _ = model.predict(archs[:4], groups=["b"] * 4)
    assert np.all(mean_b >= 100)
    with pytest.raises(ValueError, match="group_share"):
        model.fit(archs[:24], shifted, groups=groups, group_share={"c": 2.0})


def test_a_space_without_labels_keeps_its_ranking_beyond_the_labels_range(archs, conv_count):
    model = CGPredictor(epochs=1, **{**SMALL, "n_heads": 1}).fit(archs[:24], conv_count[:24], groups=["a"] * 24)
    model._scores = lambda items: np.array([[10.0, 20.0, 30.0]])  # every item scored past every training item
    labelled, _ = model.predict(archs[:3], groups=["a"] * 3)
    unlabelled, _ = model.predict(archs[:3], groups=["new"] * 3)
    assert len(set(labelled)) == 1  # the labelled group's values stay within its labels' range
    assert np.all(np.diff(unlabelled) > 0)


def test_save_and_load_give_identical_predictions(fitted, archs, tmp_path):
    loaded = CGPredictor.load(fitted.save(tmp_path / "cg"))
    for a, b in zip(fitted.predict(archs[40:]), loaded.predict(archs[40:])):
        np.testing.assert_array_equal(a, b)
    assert loaded.get_params() == fitted.get_params()


def test_pretraining_lowers_the_contrastive_loss_and_fit_starts_from_it(archs, conv_count):
    model = CGPredictor(pretrain_epochs=6, pretrain_batch_size=16, epochs=2, **SMALL)
    model.pretrain(archs[:48])
    assert model.pretrain_history_[-1] < model.pretrain_history_[0]
    assert model.pretrain_spaces_ == ["nb201"]
    assert model.embed(archs[:5]).shape == (5, 32)
    model.fit(archs[:24], conv_count[:24])
    assert model.pretrained_state_ is not None and len(model.fit_history_) == 2


def test_pretraining_samples_registered_spaces_and_skips_unknown_ones():
    model = CGPredictor(pretrain_epochs=1, pretrain_batch_size=8, **SMALL)
    model.pretrain(spaces=("nb201", "darts", "no_such_space"), n_per_space=6)
    assert model.pretrain_spaces_ == ["nb201", "darts"] and len(model.pretrain_history_) == 1


def test_pretraining_pairs_two_builds_of_one_arch(archs):
    model = CGPredictor(pretrain_epochs=2, pretrain_batch_size=8, **SMALL)
    model.pretrain([*archs[:15], user_cnn()], pair_builds={"nb201": {"C": 8, "N": 1}})
    assert len(model.pretrain_history_) == 2 and model.pretrain_spaces_ == ["custom", "nb201"]
    assert len(model.reader.cache) == 30  # both builds of each arch


def test_graphs_of_archs_are_cached_by_canonical_key_and_reused_from_disk(archs, tmp_path):
    reader = GraphReader(cache=GraphCache(tmp_path), use_ray=False)
    first = reader.graphs(archs[:5])
    assert len(reader.cache) == 5
    isomorphic = SPACE.canonical(archs[0])
    assert reader.key(isomorphic) == reader.key(archs[0])
    again = GraphReader(cache=GraphCache(tmp_path), use_ray=False).graphs(archs[:5])
    for a, b in zip(first, again):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


def test_batches_stream_in_item_order(archs):
    reader = GraphReader(use_ray=False)
    sizes = [b.num_graphs for b in reader.batches(archs[:10], batch_size=4, chunk=6)]
    assert sizes == [4, 2, 4]


def test_bulk_tracing_in_ray_tasks_matches_local_tracing(archs, ray_session):
    remote = GraphReader(use_ray=True, ray_chunk=8).graphs(archs[:8])  # one task: one worker to start
    local = GraphReader(use_ray=False).graphs(archs[:8])
    for a, b in zip(remote, local):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


def test_bad_inputs_raise_clear_errors(fitted, archs):
    with pytest.raises(ValueError, match="cannot read a computation graph from str"):
        fitted.predict(["not a model"])
    with pytest.raises(TraceError, match="leaf_modules"):
        fitted.predict([nn.Sequential(nn.Conv2d(3, 4, 3), ValueBranch())])
    with pytest.raises(ValueError, match="sequence of Arch"):
        fitted.predict(user_cnn())
    with pytest.raises(ValueError, match="labels"):
        CGPredictor(**SMALL).fit(archs[:4], [1.0, 2.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        CGPredictor(**SMALL).predict(archs[:2])
    with pytest.raises(ValueError, match="loss must be one of"):
        CGPredictor(loss="hinge")
