"""Label-free search: augmented views, the contrastive trainable (no labels, checkpoints,
bad input), the DARTS one-op-per-edge parametrisation, TPE settings reaching hyperopt, and a
real selfsup + TPE search through the CLI."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from raynas.cli import main as cli_main
from raynas.data import load_dataset
from raynas.experiment import SearchSettings
from raynas.trainables import ContrastiveModel, ImagePatchNCE, MemoryBankNCE, SelfSupervisedTrainable
from raynas.trainables.settings import ViewSettings
from raynas.trainables.views import random_view
from searchers import make_searcher
from search_spaces import get_space
from search_spaces.darts_edges import EDGE_WEIGHTS, EDGES, derive_cell

DARTS = get_space("darts")
EDGES_SPACE = get_space("darts-edges")
ARCH = DARTS.sample(0)
TINY = {**DARTS.encode(ARCH), "space": "darts", "epochs": 3, "build": {"C": 4, "layers": 2}, "data_portion": 0.3}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def on(data) -> type[SelfSupervisedTrainable]:
    """The trainable reading ``data`` (what ``tune.with_parameters`` does, without Ray)."""

    class OnData(SelfSupervisedTrainable):
        def setup(self, config: dict) -> None:
            super().setup(config, data=data)

    return OnData


def train(config: dict, data, epochs: int | None = None) -> list[dict]:
    trainable = on(data)(config=config)
    results = [trainable.train() for _ in range(epochs or config["epochs"])]
    trainable.stop()
    return results


# ----------------------------------------------------------------------------- views
def test_views_differ_per_image_and_keep_the_shape():
    pixels = torch.rand(1, 3, 8, 8).expand(16, -1, -1, -1)  # 16 copies of one image
    view = random_view(pixels, ViewSettings(), torch.Generator().manual_seed(0))
    assert view.shape == pixels.shape and torch.isfinite(view).all()
    assert len({tuple(v.flatten().tolist()) for v in view}) == 16


def test_grayscale_views_of_colour_images_and_no_colour_ops_on_one_channel():
    settings = ViewSettings(grayscale_p=1.0, jitter_p=0.0)
    rgb = random_view(torch.rand(8, 3, 8, 8), settings, torch.Generator().manual_seed(0))
    assert torch.allclose(rgb[:, 0], rgb[:, 1]) and torch.allclose(rgb[:, 1], rgb[:, 2])
    mono = torch.rand(8, 1, 8, 8)
    jittered = random_view(mono, ViewSettings(jitter_p=1.0, grayscale_p=1.0), torch.Generator().manual_seed(0))
    assert jittered.shape == mono.shape


# ----------------------------------------------------------------------------- trainable
def test_ssl_loss_decreases_over_epochs_on_fixed_data(digits):
    for method in ("simclr", "nce", "pirl"):
        losses = [r["ssl_loss"] for r in train({**TINY, "epochs": 5, "ssl_method": method, "data_portion": 0.5}, digits)]
        assert losses[-1] < losses[0] - 0.05, (method, losses)


def test_labels_are_never_used_for_training(digits):
    permuted = torch.randperm(digits.size("train"), generator=torch.Generator().manual_seed(1))
    shuffled = dataclasses.replace(digits, y={**digits.y, "train": digits.y["train"][permuted]})
    config = {**TINY, "epochs": 2, "knn_probe": True}
    honest, scrambled = train(config, digits), train(config, shuffled)
    assert [r["ssl_loss"] for r in honest] == [r["ssl_loss"] for r in scrambled]
    assert honest[-1]["knn_acc"] > scrambled[-1]["knn_acc"] + 20  # the probe reads them, and it shows
    assert honest[-1]["knn_acc"] > 30 and "val_acc" not in honest[-1] and "test_acc" not in honest[-1]
    assert [r["ssl_loss"] for r in train({**TINY, "epochs": 2}, digits)] == [r["ssl_loss"] for r in honest]


def test_restored_trial_continues_the_epoch_count_and_the_loss(digits):
    config = {**TINY, "ssl_method": "nce", "nce_negatives": 64}
    first = on(digits)(config=config)
    first.train()
    checkpoint = first.save()
    expected = first.train()
    second = on(digits)(config=config)
    second.restore(checkpoint)
    got = second.train()
    assert got["epoch"] == 2 and got["ssl_loss"] == pytest.approx(expected["ssl_loss"], rel=1e-6)
    assert torch.equal(first.model.criterion.bank, second.model.criterion.bank)
    assert second.train()["done"]


def test_pirl_fills_its_bank_with_image_features_once_and_restores_it(digits):
    config = {**TINY, "ssl_method": "pirl", "nce_negatives": 64, "patch_views": 3, "proj_dim": 16}
    first = on(digits)(config=config)
    criterion = first.model.criterion
    assert isinstance(criterion, ImagePatchNCE) and criterion.num_views == 4 and not criterion.filled
    assert criterion.merge.in_features == 3 * 16 and criterion.merge.out_features == 16
    first.train()
    assert criterion.filled and torch.allclose(criterion.bank.norm(dim=1), torch.ones(len(criterion.bank)))
    checkpoint = first.save()
    expected = first.train()
    second = on(digits)(config=config)
    second.restore(checkpoint)
    got = second.train()  # the restored bank is used as it is, not filled again
    assert got["ssl_loss"] == pytest.approx(expected["ssl_loss"], rel=1e-6)
    assert torch.equal(first.model.criterion.bank, second.model.criterion.bank)


def test_pirl_fills_a_bank_whose_size_leaves_one_image_past_a_chunk(digits):
    portion = 257 / digits.size("train")  # 256 + 1: a last chunk of one would break train-mode BatchNorm
    result = train({**TINY, "ssl_method": "pirl", "nce_negatives": 16, "proj_dim": 8, "data_portion": portion}, digits, 1)
    assert np.isfinite(result[0]["ssl_loss"])


def test_pirl_loss_weighs_its_two_branches():
    z = [torch.randn(4, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    index = torch.arange(4)

    def make(weight: float) -> ImagePatchNCE:
        torch.manual_seed(0)  # the same bank every time
        return ImagePatchNCE(size=6, dim=8, negatives=5, patches=2, weight=weight)

    def loss(weight: float) -> float:
        return float(make(weight)(z, index, torch.Generator().manual_seed(0)).detach())

    image = make(0.0).info_nce(torch.nn.functional.normalize(z[0], dim=1), index, torch.Generator().manual_seed(0))
    assert loss(0.0) == pytest.approx(float(image), rel=1e-5)
    assert loss(0.5) == pytest.approx((loss(0.0) + loss(1.0)) / 2, rel=1e-5) and loss(1.0) != pytest.approx(loss(0.0))


def test_reset_config_trains_the_new_architecture(digits):
    trainable = on(digits)(config=TINY)
    trainable.train()
    other = DARTS.sample(1)
    assert trainable.reset_config({**TINY, **DARTS.encode(other)})
    result = trainable.train()
    assert result["epoch"] == 1 and DARTS.parse(result["arch"]) == other
    assert result["params"] == sum(p.numel() for p in trainable.model.backbone.parameters())


def test_non_finite_loss_raises_a_clear_error(digits):
    broken = dataclasses.replace(digits, x={**digits.x, "train": torch.full_like(digits.x["train"], float("nan"))})
    with pytest.raises(FloatingPointError, match="non-finite training loss.*epoch 1, batch 0"):
        train(TINY, broken, epochs=1)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"ssl_method": "byol"}, "ssl_method must be one of"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"crop_scale": 0}, "crop_scale must be in"),
        ({"jitter_p": 2}, "jitter_p must be a probability"),
        ({"data_portion": 0}, "data_portion must be in"),
        ({"ssl_method": "pirl", "patch_views": 0}, "patch_views must be >= 1"),
        ({"ssl_method": "pirl", "patch_weight": 1.5}, "patch_weight must be in"),
    ],
)
def test_bad_selfsup_configs_are_named(change, words, digits):
    with pytest.raises(ValueError, match=words):
        on(digits)(config={**TINY, **change})


def test_memory_bank_negatives_are_other_images():
    loss = MemoryBankNCE(size=10, dim=4, negatives=3)
    images = torch.arange(10).repeat(50)
    negatives = loss._negatives(images, torch.Generator().manual_seed(0))
    assert negatives.shape == (500, 3) and (negatives != images[:, None]).all()
    assert set(negatives.flatten().tolist()) == set(range(10))
    everyone = MemoryBankNCE(size=5, dim=4, negatives=100)._negatives(torch.tensor([0, 4]), torch.Generator())
    assert everyone.tolist() == [[1, 2, 3, 4], [0, 1, 2, 3]]


def test_a_network_without_a_classifier_is_refused():
    with pytest.raises(ValueError, match="no `classifier` nn.Linear"):
        ContrastiveModel(torch.nn.Conv2d(1, 4, 3), 8, torch.nn.Identity())


# ----------------------------------------------------------------------------- DARTS edges
def test_edge_parametrisation_keeps_exactly_the_two_strongest_inputs_per_node():
    rng = np.random.default_rng(0)
    for _ in range(300):
        ops = [str(rng.choice(DARTS.ops)) for _ in EDGES]
        weights = [int(rng.choice(EDGE_WEIGHTS)) for _ in EDGES]
        cell = derive_cell(ops, weights)
        for node in range(4):
            pairs = cell[2 * node : 2 * node + 2]
            incoming = {i: e for e, (n, i) in enumerate(EDGES) if n == node}
            inputs = [i for _, i in pairs]
            assert len(set(inputs)) == 2 and inputs == sorted(inputs)
            strongest = sorted(incoming, key=lambda i: (-weights[incoming[i]], i))[:2]
            assert sorted(strongest) == inputs
            assert [op for op, _ in pairs] == [ops[incoming[i]] for i in inputs]


def test_edge_configs_decode_to_darts_archs_and_round_trip():
    assert len(EDGES) == 14 and len(EDGES_SPACE.tune_space()) == 2 * 2 * 14
    for seed in range(50):
        arch = DARTS.sample(seed)
        again = EDGES_SPACE.decode(EDGES_SPACE.encode(arch))
        assert again == arch and again.space == "darts" and again.spec == arch.spec
    config = {k: d.sample() for k, d in EDGES_SPACE.tune_space().items()}
    assert DARTS.is_valid(EDGES_SPACE.decode(config))
    with pytest.raises(ValueError, match="normal_edge_3_weight.*allowed values"):
        EDGES_SPACE.decode({**config, "normal_edge_3_weight": 0})


def test_every_input_pair_is_reachable_from_the_tune_domains():
    seen = set()
    for _ in range(400):
        config = {k: d.sample() for k, d in EDGES_SPACE.tune_space().items()}
        seen.add(tuple(i for _, i in EDGES_SPACE.decode(config).spec[0][6:8]))
    assert seen == set(itertools.combinations(range(5), 2))


# ----------------------------------------------------------------------------- TPE settings
def test_tpe_settings_reach_hyperopt(monkeypatch):
    import hyperopt.tpe

    calls: list[dict] = []
    original = hyperopt.tpe.suggest

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(hyperopt.tpe, "suggest", recording)
    searcher = make_searcher("tpe", EDGES_SPACE, "ssl_loss", "min", 0, num_initial=3, gamma=0.4, n_EI_candidates=7)
    for i in range(5):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"ssl_loss": float(i)})
        assert EDGES_SPACE.decode(config)
    assert calls and all(c == {"n_startup_jobs": 3, "gamma": 0.4, "n_EI_candidates": 7} for c in calls)


@pytest.mark.parametrize(
    "option, words",
    [
        ({"num_initial": -1}, "num_initial must be"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"n_EI_candidates": 0}, "n_EI_candidates must be"),
    ],
)
def test_bad_tpe_settings_are_named(option, words):
    with pytest.raises(ValueError, match=words):
        make_searcher("tpe", EDGES_SPACE, "ssl_loss", "min", 0, **option)


# ----------------------------------------------------------------------------- search
def test_selfsup_searches_minimise_ssl_loss_and_refuse_label_metrics():
    settings = SearchSettings(trainable="selfsup")
    assert (settings.metric, settings.mode) == ("ssl_loss", "min")
    assert (SearchSettings().metric, SearchSettings().mode) == ("val_acc", "max")
    with pytest.raises(ValueError, match="trains without labels"):
        SearchSettings(trainable="selfsup", metric="val_acc").check()


def test_cli_runs_a_label_free_tpe_search_over_darts_edges(ray_session, tmp_path, capsys):
    code = cli_main([
        "search", "--space", "darts-edges", "--trainable", "selfsup", "--searcher", "tpe", "--dataset", "digits",
        "--num-samples", "3", "--epochs", "2", "--storage", str(tmp_path), "--name", "ssl",
        "--set", 'build={"C": 4, "layers": 2}', "--set", "data_portion=0.2", "--set", "knn_probe=true",
        "--searcher-opt", "num_initial=2",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "best architecture  Genotype(" in out and "ssl_loss" in out
    trials = pq.read_table(tmp_path / "ssl" / "trials.parquet").to_pylist()
    assert len(trials) == 3 and all(r["epoch"] == 2 and r["ssl_loss"] > 0 for r in trials)
    assert all(0 <= r["knn_acc"] <= 100 for r in trials) and len({r["arch"] for r in trials}) == 3
