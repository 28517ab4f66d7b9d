"""Generator-level evaluation: one trial trains several networks drawn from one generator.

A NAGO architecture is a generator setting plus the seed of its graphs; a setting is good when
the networks it draws are, so a trial trains ``graph_samples`` draws of one config (graph seeds
``graph_seed``, ``graph_seed + 1``, ...), each exactly as the stand-alone trainable trains one
architecture, and reports their mean and spread.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from raynas.trainables.base import ReconfigurableTrainable
from raynas.trainables.settings import SampledSettings
from raynas.trainables.standalone import ArchTraining
from search_spaces.nago import NagoSpace



class SampledTrainable(ReconfigurableTrainable):
    """Trains ``graph_samples`` draws of one generator config; reports their mean and spread.

    Config: the stand-alone trainer keys plus ``graph_samples`` (default 1).  Each ``step`` is
    one epoch of every draw; it reports ``val_acc`` (mean), ``val_acc_std``, ``val_acc_min``,
    ``train_loss``, ``params`` and ``flops`` (means), ``epoch`` and ``arch`` (draw 0), and at
    the end ``test_acc`` (mean).  ``graph_samples=1`` reports what the stand-alone trainable does.
    """

    def _configure(self, config: dict[str, Any]) -> None:
        samples = SampledSettings.from_config(config).graph_samples
        data, space = self.inputs.get("data"), self.inputs.get("space")
        first = ArchTraining(config, data, space)
        if not isinstance(first.space, NagoSpace):
            raise ValueError(f"SampledTrainable draws NAGO generators; config space is {first.space.name!r}, not 'nago'")
        seed = first.arch.spec.seed
        self.draws = [first] + [ArchTraining({**config, "graph_seed": seed + i}, data, space) for i in range(1, samples)]

    def step(self) -> dict[str, Any]:
        results = [draw.step() for draw in self.draws]
        val = np.array([r["val_acc"] for r in results])
        out: dict[str, Any] = {
            "epoch": results[0]["epoch"],
            "arch": results[0]["arch"],
            "graph_samples": len(results),
            "val_acc": float(val.mean()),
            "val_acc_std": float(val.std()),
            "val_acc_min": float(val.min()),
            **{k: float(np.mean([r[k] for r in results])) for k in ("train_loss", "params", "flops", "epoch_time_s")},
            "node_id": self.node_id,
        }
        if results[0].get("done"):
            out["test_acc"] = float(np.mean([r["test_acc"] for r in results]))
            out["done"] = True
        return out

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save([draw.state_dict() for draw in self.draws], os.path.join(checkpoint_dir, "draws.pt"))

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        states = torch.load(os.path.join(str(checkpoint), "draws.pt"), weights_only=False)
        for draw, state in zip(self.draws, states):
            draw.load_state_dict(state)
