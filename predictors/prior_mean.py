"""Knowledge from elsewhere as a GP's prior mean, trusted as far as it predicts what is seen.

A predictor fitted on other spaces (the CG predictor on the NB101 and NB301 tables) knows
something about a new space before any of its labels exist, but not its scale, and it may be
wrong exactly where a search spends its queries.  So its scores enter a GP as a linear prior
mean ``a + w * b * prior``: ``a`` and ``b`` least squares on the observations at every step
(a reversed prior is used as well, an uninformative one is fitted away), ``w`` the prior's
skill at ranking the better half of the observations (:func:`prior_skill`), and the GP models
the residual.  The prior itself is never refitted, so the source labels it learned from stay
in the model however many target labels arrive.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from predictors.base import FittedPredictor
from raynas.arch import Arch
from raynas.io import read_parquet


def prior_skill(prior: np.ndarray, y: np.ndarray, min_points: int = 4) -> float:
    """How well ``prior`` predicts ``y`` among the better half of the observations, in [0, 1]:
    the leave-one-out predictive R^2 (Q^2) of the line ``y ~ a + b * prior`` there, against
    predicting their mean; 0 when it does no better than the mean, 1 below ``min_points``.

    Why the better half: a prior that separates bad architectures from good ones can still
    misrank the good ones, which is where a search spends its queries; a least-squares slope
    over all observations keeps trusting it there."""
    top = y >= np.median(y)
    if top.sum() < min_points:
        return 1.0
    p, v = prior[top], y[top]
    design = np.c_[np.ones(len(v)), p]
    hat = design @ np.linalg.pinv(design)
    residual = v - hat @ v
    leverage = np.clip(np.diag(hat), 0.0, 1.0 - 1e-9)
    press = np.sum((residual / (1.0 - leverage)) ** 2)
    press_mean = np.sum((v - v.mean()) ** 2) * (len(v) / (len(v) - 1)) ** 2
    return float(np.clip(1.0 - press / press_mean, 0.0, 1.0)) if press_mean > 0 else 0.0


def check_prior_weight(weight: float | str) -> float | str:
    if weight != "auto" and not (isinstance(weight, (int, float)) and not isinstance(weight, bool) and 0 <= weight <= 1):
        raise ValueError(f"prior_weight must be 'auto' or a number in [0, 1], got {weight!r}")
    return weight


def linear_prior_mean(prior_seen: np.ndarray, y: np.ndarray, weight: float | str = "auto") -> tuple[float, float, float]:
    """``(intercept, slope, w)`` of the prior mean ``intercept + slope * prior`` fitted to the
    observations ``y`` at their prior scores: ``slope = w * b`` with ``b`` least squares and
    ``w`` = :func:`prior_skill` for ``"auto"``; the intercept is refitted under that slope."""
    b = np.linalg.lstsq(np.c_[np.ones(len(y)), prior_seen], y, rcond=None)[0][1]
    w = prior_skill(prior_seen, y) if weight == "auto" else float(weight)
    slope = w * float(b)
    return float(np.mean(y - slope * prior_seen)), slope, w


class PriorScores:
    """Scores of ``space``'s architectures from knowledge gathered elsewhere, by canonical key.

    ``source``: a Parquet path with ``arch`` and ``score`` columns, a mapping from arch strings,
    canonical keys or ``Arch`` values to scores, or a fitted predictor (``predict(archs) -> (mean, std)``,
    e.g. a :class:`~predictors.cg.CGPredictor` fitted on other spaces' benchmark tables, or
    the directory it was saved to), asked once per architecture.  Calling it gives raw scores, NaN where a table has none."""

    def __init__(self, source: Any, space: Any):
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():  # a saved CG predictor or ensemble of them
            from predictors.cg import CGPredictor
            from predictors.ensemble import ENSEMBLE_FILE, EnsemblePredictor

            is_ensemble = (Path(source) / ENSEMBLE_FILE).exists()
            source = EnsemblePredictor.load(source, CGPredictor.load) if is_ensemble else CGPredictor.load(source)
        self.predictor = source if isinstance(source, FittedPredictor) else None
        self._scores: dict[str, float] = {}
        if self.predictor is not None:
            return
        if isinstance(source, (str, os.PathLike)):
            source = read_prior_table(source)
        if not isinstance(source, Mapping):
            raise ValueError(f"a prior is a Parquet path, a mapping arch -> score or a fitted predictor, got {type(source).__name__}")
        for text, score in source.items():
            try:
                key = space.as_arch(text).key
            except ValueError:  # already a canonical key
                key = str(text)
            self._scores[key] = float(score)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        if self.predictor is not None:
            new = [a for a in dict.fromkeys(archs) if a.key not in self._scores]
            if new:
                self._scores.update(zip((a.key for a in new), np.asarray(self.predictor.predict(new)[0], dtype=np.float64)))
        return np.array([self._scores.get(a.key, np.nan) for a in archs], dtype=np.float64)


def read_prior_table(path: str | os.PathLike) -> dict[str, float]:
    table = read_parquet(path, "prior table", columns=("arch", "score"))
    return dict(zip(table.column("arch").to_pylist(), table.column("score").to_pylist()))
