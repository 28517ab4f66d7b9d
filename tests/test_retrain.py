"""``raynas train``: the architectures a search found, retrained with their space's
final-training protocol (cutout, auxiliary head, drop-path for DARTS), last and best weights kept."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from raynas.cli import main as cli_main
from raynas.experiment import SETTINGS_FILE, SearchSettings
from raynas.images import cutout, cutout_pixels
from raynas.io import write_parquet_atomic
from raynas.retrain import PRESETS, best_archs, from_experiment, preset_options
from raynas.trainables import ArchTraining
from search_spaces import get_space
from searchers import FINISHED, make_searcher

NB201 = get_space("nb201")
DARTS = get_space("darts")


def test_cutout_zeroes_one_square_per_image_clipped_at_the_border():
    images = torch.ones(64, 3, 12, 12)
    out = cutout(images, 4, torch.Generator().manual_seed(0))
    zeroed = (out == 0).all(1).sum((1, 2))  # pixels cut per image
    assert zeroed.max() == 16 and zeroed.min() >= 4  # a full 4x4 inside, at least a 2x2 corner at the border
    assert ((out == 0) | (out == 1)).all() and torch.equal(cutout(images, 0), images)


def test_a_cutout_share_follows_the_image_size_and_one_that_blanks_every_image_is_refused():
    assert preset_options("darts", "darts")["cutout"] == 0.5  # DARTS' 16 of CIFAR's 32 pixels
    assert [cutout_pixels(0.5, shape) for shape in [(3, 32, 32), (1, 8, 8), (3, 224, 224)]] == [16, 4, 112]
    assert cutout_pixels(16, (3, 32, 32)) == 16 and cutout_pixels(15, (1, 8, 8)) == 15  # 15: a corner stays
    with pytest.raises(ValueError, match="cutout=16 \\(16 pixels\\) blanks every 8x8 training image"):
        cutout_pixels(16, (1, 8, 8))
    with pytest.raises(ValueError, match="cutout must be a whole number of pixels"):
        SearchSettings(trainer_options={"cutout": 2.5}).check()


def test_the_darts_protocol_trains_with_its_auxiliary_head_and_rising_drop_path():
    options = {**preset_options("darts", "darts"), "build": {"C": 4, "layers": 3, "auxiliary": True}}
    options.update(epochs=2, batch_size=128, dataset="digits", keep_best=True)
    config = {**DARTS.encode(DARTS.sample(0)), **options, "space": "darts"}
    training = ArchTraining(config)
    calls = []
    training.model.auxiliary_head.register_forward_hook(lambda *_: calls.append(1))
    first = training.step()
    assert training.model.drop_path_prob == 0.0 and calls  # the auxiliary head was trained
    last = training.step()
    assert training.model.drop_path_prob == pytest.approx(0.2 * 1 / 2)  # the second epoch's: 0.2 * epoch / epochs
    assert "test_acc" in last and training.best["val_acc"] == max(first["val_acc"], last["val_acc"]) == last["best_val_acc"]
    restored = ArchTraining(config)
    restored.load_state_dict(training.state_dict())
    assert restored.best["epoch"] == training.best["epoch"]


def test_regularisers_a_network_lacks_are_named():
    config = {**NB201.encode(NB201.sample(0)), "space": "nb201", "dataset": "synthetic:64", "epochs": 1}
    with pytest.raises(ValueError, match="the nb201 network has no drop-path"):
        ArchTraining({**config, "drop_path": 0.2, "build": {"C": 4, "N": 1}})
    with pytest.raises(ValueError, match='auxiliary_weight > 0 needs a network with an auxiliary head'):
        SearchSettings(trainer_options={"auxiliary_weight": 0.4}).check()


def test_the_given_searcher_proposes_each_architecture_once_in_order():
    archs = [str(a) for a in NB201.sample_unique(3, 0)]
    searcher = make_searcher("given", "nb201", "val_acc", "max", archs=[archs[0], archs[1], archs[0], archs[2]])
    proposed = [NB201.decode(searcher.suggest(str(i))) for i in range(3)]
    assert [str(a) for a in proposed] == archs and searcher.suggest("3") == FINISHED
    with pytest.raises(ValueError, match="is not a nb201 architecture"):
        make_searcher("given", "nb201", "val_acc", "max", archs=["|conv~0|"])


def _experiment(tmp_path, rows, **settings):
    folder = tmp_path / "search"
    folder.mkdir()
    (folder / SETTINGS_FILE).write_text(SearchSettings(**settings).to_json())
    write_parquet_atomic(pa.Table.from_pylist(rows), folder / "trials.parquet")
    return folder


def test_the_best_distinct_architectures_of_a_search_are_picked(tmp_path):
    a, b, c = (str(x) for x in NB201.sample_unique(3, 1))
    rows = [{"arch": a, "val_acc": 50.0}, {"arch": b, "val_acc": 70.0}, {"arch": b, "val_acc": 69.0},
            {"arch": c, "val_acc": float("nan")}, {"arch": None, "val_acc": None, "error": "died"}]  # fmt: skip
    folder = _experiment(tmp_path, rows, dataset="digits", trainer_options={"lr": 0.2, "build": {"C": 4, "N": 1}})
    saved, archs = best_archs(folder, 5)
    assert archs == [b, a]
    settings = from_experiment(folder, 1, epochs=3, trainer_options={"build": {"N": 2}})
    assert settings.searcher_options == {"archs": [b]} and settings.epochs == 3 and settings.dataset == "digits"
    assert settings.trainer_options["build"] == {"C": 16, "N": 2}  # the search's, then the preset's, then the user's
    assert settings.trainer_options["lr"] == PRESETS["nb201"]["lr"] and settings.trainer_options["keep_best"]
    assert (settings.storage, settings.name) == (str(folder.parent), f"{folder.name}-retrain")  # beside the search
    settings.check()


@pytest.mark.parametrize("trainable, kept", [("sampled", True), ("selfsup", False)])
def test_a_nago_search_retrains_with_its_own_recipe_and_a_label_free_one_without(tmp_path, trainable, kept):
    nago = get_space("nago")
    recipe = {"lr": 0.1, "lr_schedule": "step", "lr_step": 30, "weight_decay": 1e-4, "build": {"width": 8}}
    extra = {"graph_samples": 4} if trainable == "sampled" else {"ssl_method": "pirl"}
    folder = _experiment(tmp_path, [{"arch": str(nago.sample(0)), "val_acc": 50.0, "ssl_loss": 1.0}], space="nago",
                         dataset="digits", trainable=trainable, metric="val_acc" if kept else "ssl_loss",
                         mode="max" if kept else "min", trainer_options={**recipe, **extra})  # fmt: skip
    options = from_experiment(folder, 1).trainer_options  # nago has no retraining preset: the search's keys or the defaults
    assert options["build"] == {"width": 8} and not set(extra) & set(options)
    assert (options.get("lr_schedule"), options.get("lr_step")) == (("step", 30) if kept else (None, None))


def test_a_multi_objective_search_gives_its_pareto_set(tmp_path):
    a, b, c = (str(x) for x in NB201.sample_unique(3, 2))
    rows = [{"arch": a, "val_acc": 60.0, "params": 10}, {"arch": b, "val_acc": 70.0, "params": 30},
            {"arch": c, "val_acc": 55.0, "params": 20}]  # fmt: skip
    folder = _experiment(tmp_path, rows, objectives={"val_acc": "max", "params": "min"})
    assert best_archs(folder, 10)[1] == [b, a]  # c is dominated by a


def test_retraining_mistakes_are_named_before_ray_starts(tmp_path, capsys):
    folder = _experiment(tmp_path, [{"arch": str(NB201.sample(0)), "val_acc": 1.0}], trainable="benchmark",
                         benchmark="table.parquet", dataset="cifar10")  # fmt: skip
    assert cli_main(["train", "--from", str(folder)]) == 2
    assert "give the images to train them on with --dataset" in capsys.readouterr().err
    assert cli_main(["train", "--from", str(tmp_path / "nothing")]) == 2
    assert "is not a raynas experiment" in capsys.readouterr().err
    assert cli_main(["train", "--arch", "|none~0|", "--storage", str(tmp_path)]) == 2
    printed = capsys.readouterr()
    assert "is not a nb201 architecture" in printed.err and "retraining" not in printed.out  # no plan for it
    assert cli_main(["train", "--arch", str(NB201.sample(0)), "--preset", "resnet"]) == 2
    assert "unknown preset 'resnet'" in capsys.readouterr().err
    blank = ["train", "--arch", str(DARTS.sample(0)), "--space", "darts", "--dataset", "digits", "--set", "cutout=16",
             "--epochs", "1", "--storage", str(tmp_path)]  # fmt: skip
    assert cli_main(blank) == 2
    assert "blanks every 8x8 training image" in capsys.readouterr().err


def test_train_retrains_given_architectures_and_keeps_last_and_best_weights(ray_session, tmp_path, capsys):
    archs = [str(a) for a in NB201.sample_unique(2, 3)]
    flags = ["train", "--arch", archs[0], "--arch", archs[1], "--epochs", "2", "--storage", str(tmp_path),
             "--name", "rt", "--set", 'build={"C": 4, "N": 1}', "--set", "batch_size=128"]  # fmt: skip
    assert cli_main(flags) == 0
    out = capsys.readouterr().out
    assert "retraining 2 nb201 architecture(s) on digits for 2 epochs" in out
    table = pa.parquet.read_table(tmp_path / "rt" / "trials.parquet").to_pylist()
    assert sorted(r["arch"] for r in table) == sorted(archs)
    assert all(np.isfinite(r["test_acc"]) and r["epoch"] == 2 for r in table)
    assert all(r["best_val_acc"] >= r["val_acc"] and r["best_epoch"] in (1, 2) for r in table)  # what best.pt holds
    assert "best val_acc (epoch)" in out
    saved = json.loads((tmp_path / "rt" / SETTINGS_FILE).read_text())
    assert saved["trainer_options"]["build"] == {"C": 4, "N": 1} and saved["trainer_options"]["lr"] == 0.1
    for name in ("state.pt", "best.pt"):
        assert len(list((tmp_path / "rt").glob(f"*/checkpoint_*/{name}"))) == 2
    best = torch.load(next((tmp_path / "rt").glob("*/checkpoint_*/best.pt")), weights_only=False)
    assert set(best) == {"model", "epoch", "val_acc", "arch"}
    assert cli_main(["train", "--resume", str(tmp_path / "rt")]) == 0  # a finished run resumes to the same table
