"""Trainer keys of the flat Tune config, their defaults, and their checks.

The config is the contract (DESIGN.md): a space's own keys plus these trainer keys, all
plain values, so every searcher and every trainable agree on what a trial is.  Each
trainable's keys are one frozen dataclass; :func:`check_keys` checks a set of them (names,
types, ranges) in the driver before anything runs, and ``from_config`` checks the values a
trial received the same way.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from raynas.arch import Arch
from raynas.devices import PRECISIONS, check_device_name
from search_spaces import SearchSpace, as_space


@dataclass(frozen=True)
class TrainerSettings:
    """Defaults chosen for the embedded digits task; override any of them in the config."""

    space: str | SearchSpace = "nb201"
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
    device: str = "auto"  # "auto" (the GPU Ray assigned, else the CPU), "cpu", "cuda", "cuda:N"
    precision: str = "32"  # "32", "bf16" or "fp16" (autocast; fp16 with gradient scaling)
    channels_last: bool = False  # the channels-last memory format for convolutions

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TrainerSettings":
        """The settings among a trial's config keys (the space's own keys are ignored), checked."""
        values = {f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config}
        check_types(cls, values)
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
        check_device_name(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")


def check_keys(settings_type: type, values: Mapping[str, Any]) -> None:
    """``values`` as the keys of ``settings_type`` (a settings dataclass): every key known (an
    unknown one is named with the closest known one), every value of its type, every range."""
    names = [f.name for f in dataclasses.fields(settings_type)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown trainer key {key!r}{hint} The trainer keys are {sorted(names)}")
    check_types(settings_type, values)
    settings = settings_type(**values)
    if hasattr(settings, "check"):
        settings.check()


def check_types(settings_type: type, values: Mapping[str, Any]) -> None:
    """A ValueError naming the first value in ``values`` that is not of its field's type."""
    hints = typing.get_type_hints(settings_type)
    for key, value in values.items():
        if key in hints and not _is_instance(value, hints[key]):
            raise ValueError(f"{key} must be {_describe(hints[key])}, got {value!r}")


def _is_instance(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, h) for h in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    names = {bool: "true or false ([True, False])", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    origin = typing.get_origin(hint) or hint
    return names.get(hint, "a JSON object" if origin is dict else f"a {getattr(origin, '__name__', origin)}")


def decode_trial(
    config: Mapping[str, Any], settings_type: type[TrainerSettings] = TrainerSettings, space: SearchSpace | None = None
) -> tuple[TrainerSettings, SearchSpace, Arch]:
    """Settings (of ``settings_type``, a trainable's own subclass), space and architecture of
    one trial's config.  The space is ``space`` when given (the object shared with every
    trial), else the one ``config["space"]`` is or names."""
    settings = settings_type.from_config(config)
    if space is None:
        space = as_space(settings.space)
    elif isinstance(config.get("space"), str) and config["space"] != space.name:
        raise ValueError(f"config space {config['space']!r} is not the space {space.name!r} the trial was given")
    return settings, space, space.decode(config)
