"""The base of the raynas Tune trainables: every per-trial piece of state comes from ``_configure``.

Tune reuses an actor for the next trial (``reuse_actors=True``) only when ``reset_config``
accepts the new config; a trainable that builds everything in ``_configure`` re-configures
itself instead of starting a new process.

Checkpoints are taken by time, not by epoch, when the experiment says how often
(``checkpoint_every_s`` through ``tune.with_parameters``): a checkpoint of every 2-second
epoch made Tune snapshot its experiment state every few seconds (and warn about it), while a
lost worker costs at most ``checkpoint_every_s`` of training either way.
"""
from __future__ import annotations

import time
from functools import cached_property
from typing import Any, Mapping

import ray
from ray import tune
from ray.tune.result import SHOULD_CHECKPOINT

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
        self._last_checkpoint = time.monotonic()
        self._configure(config)

    def train(self) -> dict[str, Any]:
        """Tune's ``train``, asking for a checkpoint once ``checkpoint_every_s`` seconds have
        passed since the last one (the end of a trial checkpoints through ``checkpoint_at_end``)."""
        result = super().train()
        every = self.inputs.get("checkpoint_every_s")
        if every is not None and not result.get("done") and time.monotonic() - self._last_checkpoint >= every:
            result[SHOULD_CHECKPOINT] = True
            self._last_checkpoint = time.monotonic()
        return result

    def _configure(self, config: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _configure(config)")

    @cached_property
    def node_id(self) -> str:
        """The Ray node this actor runs on ("" outside Ray).  Reported with every result because
        Tune's ``node_ip`` cannot tell apart several nodes on one host (e.g. a test cluster)."""
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._last_checkpoint = time.monotonic()
        self._configure(new_config)
        self.config = new_config
        return True
