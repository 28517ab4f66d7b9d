"""A deep ensemble: several predictors trained from different seeds, predictions averaged.

A predictor trained on other spaces' labels transfers with seed-to-seed spread; averaging
the members removes most of it (``bench/predictor_transfer.py --ensemble`` measures it).  Members are independent, so on a Ray cluster
they can be fitted as tasks; here they are fitted one after another.  Saved, an ensemble is a
folder of its members' folders (``member-<seed>/``) and ``ensemble.json`` listing them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np


class EnsemblePredictor:
    """``make(seed)`` builds one member (anything with ``fit`` / ``predict -> (mean, std)``);
    ``seeds`` are the members' seeds.  ``predict`` returns the members' mean prediction and
    the total spread: ``sqrt(mean of member variances + variance of member means)``."""

    def __init__(self, make: Callable[[int], Any], seeds: Sequence[int] = (0, 1, 2)):
        if len(seeds) < 1 or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
        self.make, self.seeds = make, list(seeds)
        self.members_: list[Any] = []

    def fit(self, items: Sequence[Any], y: Sequence[float], **fit_kwargs: Any) -> "EnsemblePredictor":
        self.members_ = [self.make(seed).fit(items, y, **fit_kwargs) for seed in self.seeds]
        return self

    def predict(self, items: Sequence[Any], **predict_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        if not self.members_:
            raise RuntimeError("EnsemblePredictor is not fitted: call fit(items, y) first")
        outputs = [m.predict(items, **predict_kwargs) for m in self.members_]
        means = np.array([mean for mean, _ in outputs])
        variances = np.array([std**2 for _, std in outputs])
        return means.mean(axis=0), np.sqrt(variances.mean(axis=0) + means.var(axis=0))

    def save(self, path: str | Path) -> Path:
        """Each member's ``save`` into ``path/member-<seed>``, then ``path/ensemble.json``."""
        if not self.members_:
            raise RuntimeError("EnsemblePredictor is not fitted: nothing to save")
        path = Path(path)
        for seed, member in zip(self.seeds, self.members_):
            member.save(path / f"member-{seed}")
        (path / ENSEMBLE_FILE).write_text(json.dumps({"seeds": self.seeds}))
        return path

    @classmethod
    def load(cls, path: str | Path, load_member: Callable[[Path], Any]) -> "EnsemblePredictor":
        """An ensemble written by :meth:`save`; ``load_member`` reads one member's folder."""
        path = Path(path)
        if not (path / ENSEMBLE_FILE).exists():
            raise FileNotFoundError(f"{path} is not a saved ensemble: no {ENSEMBLE_FILE}")
        seeds = json.loads((path / ENSEMBLE_FILE).read_text())["seeds"]
        ensemble = cls(lambda seed: None, seeds)
        ensemble.members_ = [load_member(path / f"member-{seed}") for seed in seeds]
        return ensemble


#: the file that marks a folder as a saved :class:`EnsemblePredictor`
ENSEMBLE_FILE = "ensemble.json"
