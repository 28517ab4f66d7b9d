"""Trainables that fail on purpose, importable by Ray workers (``tests/`` is on their
PYTHONPATH, see ``conftest.ray_session``)."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.trainables import StandaloneTrainable, TrainerSettings, register_trainable
from raynas.trainables.registry import STANDALONE_REPORTS as REPORTS


@dataclass(frozen=True)
class DiesOnceSettings(TrainerSettings):
    kill_marker: str = ""
    kill_at: int = 2


@register_trainable("dies-once", "stand-alone training that kills its worker once", settings=DiesOnceSettings,
                    metric="val_acc", reports=REPORTS)  # fmt: skip
class DiesOnceTrainable(StandaloneTrainable):
    """Stand-alone training whose worker process SIGKILLs itself the first time any trial
    finishes epoch ``kill_at`` (config key, default 2), before reporting it.

    The marker file ``config["kill_marker"]`` (it records the killed pid) makes the crash
    happen once across processes, so the retried trial runs through.  SIGKILL leaves no
    chance to save anything: only the checkpoint of the previous epoch survives.
    """

    def step(self) -> dict[str, Any]:
        result = super().step()
        marker = Path(self.config["kill_marker"])
        if self.training.epoch == int(self.config.get("kill_at", 2)) and not marker.exists():
            marker.write_text(f"{os.getpid()} {result['arch']}")
            os.kill(os.getpid(), signal.SIGKILL)
        return result
