"""``raynas search --preset NAME``: a published search protocol as named settings.

A preset fixes fields of the search's settings (:class:`raynas.experiment.SearchSettings`: the
searcher, its options, the trainable, trainer keys, epochs, scheduler options).  What the user
gives explicitly wins: a flag given replaces the preset's value, and in the option dicts
(``--set``, ``--searcher-opt``) the user's keys replace the preset's keys one by one (a ``build``
given replaces the preset's ``build`` whole: its keys exclude one another, as ``width`` and
``param_budget`` do).  Adding a protocol is one entry in :data:`SEARCH_PRESETS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection

#: settings fields that are dicts of options, merged key by key
OPTION_FIELDS = ("searcher_options", "trainer_options", "scheduler_options")
#: settings fields a preset may fix
PRESET_FIELDS = ("searcher", "trainable", "epochs", "num_samples", *OPTION_FIELDS)


@dataclass(frozen=True)
class SearchPreset:
    """One protocol: ``settings`` holds values of :data:`PRESET_FIELDS`; ``summary`` says whose it is."""

    summary: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.settings) - set(PRESET_FIELDS)
        if unknown:
            raise ValueError(f"a search preset may fix {list(PRESET_FIELDS)}, not {sorted(unknown)}")


SEARCH_PRESETS: dict[str, SearchPreset] = {
    # Ru et al. 2020 (NAGO) on CIFAR-10: BOHB with eta=2 over budgets of 30, 60 and 120 epochs; the
    # trainer of their vega configuration (SGD 0.1, momentum 0.9, weight decay 1e-4, step decay);
    # every network sized to 4e6 parameters.  Raynas's own choices where the paper's were not checked:
    # the step decay (x0.1 every 30 epochs) and a generator scored by the mean of 4 sampled networks
    "nago-paper": SearchPreset(
        "NAGO (Ru et al. 2020): BOHB eta=2, budgets 30 -> 120 epochs, SGD 0.1 / momentum 0.9 / wd 1e-4 with "
        "step decay, networks of 4e6 parameters, a generator scored by the mean of 4 sampled networks",
        {
            "searcher": "bohb",
            "trainable": "sampled",
            "epochs": 120,
            "scheduler_options": {"reduction_factor": 2},  # budgets epochs / eta**2 .. epochs: 30, 60, 120
            "trainer_options": {
                "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4,
                "lr_schedule": "step", "lr_step": 30, "lr_gamma": 0.1,
                "build": {"param_budget": 4_000_000}, "graph_samples": 4,
            },
        },
    ),  # fmt: skip
    # Nguyen & Chang 2021 (CSNAS), as its search/search.py runs it: TPE for 120 evaluations over the
    # 5-node cell space, each cell (C=32, 8 cells) trained label-free for 10 epochs with SGD 1e-3 /
    # momentum 0.9 at a constant rate, batch 256, its image + patch NCE (ImagePatchNCE: 256-d,
    # 2(B-1) = 510 negatives, temperature 0.07, bank weight 0.5, branch weight 0.5, 2 patch views)
    "csnas-paper": SearchPreset(
        "CSNAS (Nguyen & Chang 2021): TPE for 120 evaluations over darts-csnas, 10 label-free epochs of "
        "image + patch NCE against a memory bank (256-d, 510 negatives, 2 patch views), SGD 1e-3 / momentum 0.9 "
        "constant, batch 256, C=32, 8 cells",
        {
            "searcher": "tpe",
            "trainable": "selfsup",
            "epochs": 10,
            "num_samples": 120,
            "trainer_options": {
                "ssl_method": "pirl", "proj_dim": 256, "nce_negatives": 2 * (256 - 1), "batch_size": 256,
                "lr": 1e-3, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
                "lr_schedule": "step", "lr_step": 10, "lr_gamma": 1.0, "build": {"C": 32, "layers": 8},
            },
        },
    ),  # fmt: skip
}


def available_presets() -> list[str]:
    return sorted(SEARCH_PRESETS)


def apply_preset(name: str | None, values: dict[str, Any], given: Collection[str]) -> dict[str, Any]:
    """``values`` (settings fields) with preset ``name``'s settings where the user gave none;
    ``given``: the fields the user set explicitly.  An unknown name is a ValueError."""
    if name is None:
        return dict(values)
    if name not in SEARCH_PRESETS:
        raise ValueError(f"unknown search preset {name!r}; available: {available_presets()}")
    out = dict(values)
    for key, value in SEARCH_PRESETS[name].settings.items():
        if key in OPTION_FIELDS:
            out[key] = {**value, **(values.get(key) or {})}
        elif key not in given:
            out[key] = value
    return out
