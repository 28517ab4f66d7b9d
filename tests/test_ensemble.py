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


def test_a_saved_ensemble_of_cg_predictors_loads_as_one_and_serves_as_a_prior(tmp_path):
    from predictors.cg import CGPredictor
    from predictors.prior_mean import PriorScores
    from search_spaces import get_space

    space = get_space("nb201")
    archs = space.sample_unique(20, 4)
    y = [float(a.text.count("conv_3x3")) for a in archs]
    small = {"hidden": 16, "layers": 1, "embed_dim": 16, "n_heads": 1, "batch_size": 8, "use_ray": False, "epochs": 2}
    ensemble = EnsemblePredictor(lambda seed: CGPredictor(seed=seed, **small), seeds=[3, 4]).fit(archs, y)
    loaded = EnsemblePredictor.load(ensemble.save(tmp_path / "cg"), CGPredictor.load)
    assert loaded.seeds == [3, 4]
    np.testing.assert_allclose(loaded.predict(archs[:5])[0], ensemble.predict(archs[:5])[0], rtol=1e-5)
    np.testing.assert_allclose(PriorScores(str(tmp_path / "cg"), space)(archs[:5]), ensemble.predict(archs[:5])[0], rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="not a saved ensemble"):
        EnsemblePredictor.load(tmp_path, CGPredictor.load)
