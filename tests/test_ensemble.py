"""EnsemblePredictor: members from different seeds, mean prediction and total spread."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.ensemble import EnsemblePredictor


class Shifted:
    """A member predicting ``x + seed`` with its own spread ``seed``."""

    def __init__(self, seed: int):
        self.seed = seed
        self.fitted_on: list = []

    def fit(self, items, y):
        self.fitted_on = list(items)
        return self

    def predict(self, items):
        x = np.asarray(items, dtype=float)
        return x + self.seed, np.full(len(x), float(self.seed))


def test_mean_and_total_spread_of_the_members():
    ensemble = EnsemblePredictor(Shifted, seeds=[0, 2]).fit([1.0, 2.0], [0.0, 0.0])
    assert [m.fitted_on for m in ensemble.members_] == [[1.0, 2.0]] * 2
    mean, std = ensemble.predict([1.0, 5.0])
    np.testing.assert_allclose(mean, [2.0, 6.0])
    np.testing.assert_allclose(std, np.sqrt((0 + 4) / 2 + 1.0))  # mean variance 2, variance of means 1


def test_bad_use_raises_clear_errors():
    with pytest.raises(ValueError, match="distinct"):
        EnsemblePredictor(Shifted, seeds=[1, 1])
    with pytest.raises(RuntimeError, match="not fitted"):
        EnsemblePredictor(Shifted).predict([1.0])
