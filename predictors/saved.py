"""The one on-disk layout of a saved model: a directory with ``weights.pt`` (tensors, loaded
with ``weights_only=True`` so a saved model cannot run code) and ``config.json`` (settings and
histories a person can read).  Both files are written to temporary names and renamed, so a
crash while saving leaves the previous save readable."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


def save_dir(path: str | Path, weights: Any, config: dict[str, Any]) -> Path:
    """Write ``weights`` (anything ``torch.save`` takes) and ``config`` (JSON) under ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(weights, path / f"{WEIGHTS_FILE}.tmp")
    (path / f"{CONFIG_FILE}.tmp").write_text(json.dumps(config, indent=1))
    (path / f"{WEIGHTS_FILE}.tmp").replace(path / WEIGHTS_FILE)
    (path / f"{CONFIG_FILE}.tmp").replace(path / CONFIG_FILE)
    return path


def load_dir(path: str | Path, kind: str) -> tuple[dict[str, Any], Any]:
    """``(config, weights)`` of a directory written by :func:`save_dir`; ``kind`` names what
    was expected there in the error when a file is missing."""
    path = Path(path)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path} is not a saved {kind}: missing {missing}")
    return json.loads((path / CONFIG_FILE).read_text()), torch.load(path / WEIGHTS_FILE, weights_only=True)
