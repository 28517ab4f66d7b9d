"""Constraints on the networks a searcher may propose, checked before anything is trained.

A parameter budget is the constraint every deployment has (MobileNetV3's search is run under
one), and unlike latency it is exact and cheap to check on the driver: the architecture is
built as the trials will build it (the dataset's classes and image shape, the trainer's
``build`` options) and its parameters counted, once per architecture.
"""
from __future__ import annotations

from typing import Any, Mapping

from raynas.arch import Arch
from search_spaces import SearchSpace

#: what a constraint needs to know about the networks the trials build (the experiment's
#: ``model`` fact): ``num_classes``, ``in_shape`` and optional ``build`` options
MODEL_KEYS = ("num_classes", "in_shape")


class ParamBudget:
    """``budget(arch)``: whether ``arch``'s network has at most ``max_params`` parameters."""

    def __init__(self, space: SearchSpace, max_params: float, model: Mapping[str, Any] | None):
        if isinstance(max_params, bool) or not isinstance(max_params, (int, float)) or not max_params > 0:
            raise ValueError(f"max_params must be a number > 0, got {max_params!r}")
        if not model or any(k not in model for k in MODEL_KEYS):
            raise ValueError(
                "max_params counts the parameters of the networks the trials build: it needs their shape, "
                "model={'num_classes': ..., 'in_shape': (C, H, W), 'build': {...}} (raynas search passes it)"
            )
        self.space, self.max_params = space, float(max_params)
        self.options = {"num_classes": int(model["num_classes"]), "in_shape": tuple(model["in_shape"]),
                        **dict(model.get("build") or {})}  # fmt: skip
        self._counts: dict[str, int] = {}

    def count(self, arch: Arch) -> int:
        """Parameters of ``arch``'s network, built as the trials build it (cached by key)."""
        if arch.key not in self._counts:
            model = self.space.build(self.space.canonical(arch), **self.options)
            self._counts[arch.key] = sum(p.numel() for p in model.parameters())
        return self._counts[arch.key]

    def __call__(self, arch: Arch) -> bool:
        return self.count(arch) <= self.max_params

    def __repr__(self) -> str:
        return f"at most {self.max_params:,.0f} parameters"
