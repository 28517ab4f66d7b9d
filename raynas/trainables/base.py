"""The base of the raynas Tune trainables: every per-trial piece of state comes from ``_configure``.

Tune reuses an actor for the next trial (``reuse_actors=True``) only when ``reset_config``
accepts the new config; a trainable that builds everything in ``_configure`` re-configures
itself instead of starting a new process.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, Mapping

import ray
from ray import tune

from raynas.parallel import use_allotted_threads


class ReconfigurableTrainable(tune.Trainable):
    """A Tune class trainable whose ``setup`` and ``reset_config`` both go through ``_configure``.

    ``setup`` keeps what ``tune.with_parameters`` shares with every trial in :attr:`inputs`:
    ``data`` (a dataset), ``space`` (the search space object itself, so a space defined in
    the user's script reaches the workers), ``benchmark`` (a table).
    """

    def setup(self, config: dict[str, Any], **inputs: Any) -> None:
        use_allotted_threads()
        self.inputs = inputs
        self._configure(config)

    def _configure(self, config: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _configure(config)")

    @cached_property
    def node_id(self) -> str:
        """The Ray node this actor runs on ("" outside Ray).  Reported with every result because
        Tune's ``node_ip`` cannot tell apart several nodes on one host (e.g. a test cluster)."""
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._configure(new_config)
        self.config = new_config
        return True
