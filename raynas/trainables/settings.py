"""Trainer keys of the flat Tune config, their defaults, and their checks.

The config is the contract (DESIGN.md): a space's own keys plus these trainer keys, all
plain values, so every searcher and every trainable agree on what a trial is.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from raynas.arch import Arch
from search_spaces import SearchSpace, get_space


@dataclass(frozen=True)
class TrainerSettings:
    """Defaults chosen for the embedded digits task; override any of them in the config."""

    space: str = "nb201"
    dataset: str = "digits"
    epochs: int = 4
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 64
    grad_clip: float = 5.0
    augment: bool = True
    seed: int = 0
    data_portion: float = 1.0
    build: dict[str, Any] = field(default_factory=dict)  # keyword options of space.build

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TrainerSettings":
        values = {f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config}
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        positive = {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 < self.data_portion <= 1:
            raise ValueError(f"data_portion must be in (0, 1], got {self.data_portion!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0 (grad_clip 0 turns clipping off)")


def decode_trial(
    config: Mapping[str, Any], settings_type: type[TrainerSettings] = TrainerSettings
) -> tuple[TrainerSettings, SearchSpace, Arch]:
    """Settings (of ``settings_type``, a trainable's own subclass), space and architecture of one trial's config."""
    settings = settings_type.from_config(config)
    space = get_space(settings.space)
    return settings, space, space.decode(config)

