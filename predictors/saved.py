"""The one on-disk layout of a saved model: a directory with ``weights.pt`` (tensors, loaded
with ``weights_only=True`` so a saved model cannot run code) and ``config.json`` (settings and
histories a person can read).  Both files are written completely to temporary names before
either is renamed into place, so a crash while writing leaves the previous save readable."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from raynas.results import atomic_path

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


def save_dir(path: str | Path, weights: Any, config: dict[str, Any]) -> Path:
    """Write ``weights`` (anything ``torch.save`` takes) and ``config`` (JSON) under ``path``."""
    path = Path(path)
    with atomic_path(path / WEIGHTS_FILE) as weights_tmp, atomic_path(path / CONFIG_FILE) as config_tmp:
        torch.save(weights, weights_tmp)
        config_tmp.write_text(json.dumps(config, indent=1))
    return path


def load_dir(path: str | Path, kind: str) -> tuple[dict[str, Any], Any]:
    """``(config, weights)`` of a directory written by :func:`save_dir`; ``kind`` names what
    was expected there in the error when a file is missing."""
    path = Path(path)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path} is not a saved {kind}: missing {missing}")
    return json.loads((path / CONFIG_FILE).read_text()), torch.load(path / WEIGHTS_FILE, weights_only=True)
