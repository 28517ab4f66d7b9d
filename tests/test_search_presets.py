"""``raynas search --preset``: named protocols, flags given explicitly winning; the step LR schedule."""
from __future__ import annotations

import pytest
import torch

from cli_settings import cli_search_settings
from raynas import cli
from raynas.search_presets import SEARCH_PRESETS, SearchPreset, apply_preset
from raynas.trainables.loop import lr_schedule
from raynas.trainables.settings import TrainerSettings


def test_nago_paper_preset_sets_the_published_protocol(monkeypatch):
    s = cli_search_settings(monkeypatch, "--space", "nago", "--preset", "nago-paper")
    assert (s.searcher, s.trainable, s.epochs) == ("bohb", "sampled", 120)
    assert s.scheduler().budgets() == [30, 60, 120]
    opts = s.trainer_options
    assert (opts["lr"], opts["momentum"], opts["weight_decay"], opts["lr_schedule"]) == (0.1, 0.9, 1e-4, "step")
    assert opts["build"] == {"param_budget": 4_000_000}


def test_flags_given_explicitly_win_over_the_preset(monkeypatch):
    s = cli_search_settings(monkeypatch, "--space", "nago", "--preset", "nago-paper", "--epochs", "4", "--num-samples", "3",
                  "--set", "lr=0.05", "--set", 'build={"width": 4}', "--scheduler-opt", "min_t=2")  # fmt: skip
    assert (s.epochs, s.num_samples, s.searcher) == (4, 3, "bohb")
    assert s.trainer_options["lr"] == 0.05 and s.trainer_options["momentum"] == 0.9
    assert s.trainer_options["build"] == {"width": 4}  # a build given replaces the preset's whole
    assert s.scheduler().budgets() == [2, 4]
    assert apply_preset(None, {"epochs": 3}, set()) == {"epochs": 3}


def test_unknown_preset_is_an_error_before_ray_starts(capsys):
    import ray

    assert cli.main(["search", "--space", "nago", "--preset", "nago-papr"]) == 2
    assert "unknown search preset 'nago-papr'" in capsys.readouterr().err and "nago-paper" in SEARCH_PRESETS
    assert not ray.is_initialized()
    with pytest.raises(ValueError, match="may fix"):
        SearchPreset("bad", {"space": "nago"})


def test_step_schedule_decays_by_gamma_every_lr_step_epochs():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = lr_schedule(optimizer, TrainerSettings(lr_schedule="step", lr_step=2, lr_gamma=0.1))
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainerSettings(lr_schedule="linear").check()
