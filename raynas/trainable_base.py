"""The base of the raynas Tune trainables: every per-trial piece of state comes from ``_configure``.

Tune reuses an actor for the next trial (``reuse_actors=True``, about 1 s saved per trial) only
when ``reset_config`` accepts the new config; a trainable that builds everything in
``_configure`` re-configures itself instead of starting a new process.  This module sits
outside :mod:`raynas.trainables` so that search spaces (NAGO's ``SampledTrainable``) can
subclass it without an import cycle.
"""
from __future__ import annotations

from typing import Any, Mapping

from ray import tune


class ReconfigurableTrainable(tune.Trainable):
    """A Tune class trainable whose ``setup`` and ``reset_config`` both go through ``_configure``."""

    def _configure(self, config: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _configure(config)")

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._configure(new_config)
        self.config = new_config
        return True
