"""StackedPredictor: a trained predictor and zero-cost proxies as quantiles of a reference sample."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from predictors.stacking import StackedPredictor, _quantile
from predictors.zero_cost import ZeroCostPredictor
from search_spaces import get_space

SPACE = get_space("nb201")
SMALL = {"build": {"C": 4, "N": 1}, "batch_size": 8}


def params_base() -> ZeroCostPredictor:
    """A base 'predictor' whose scores are known: the parameter count."""
    return ZeroCostPredictor("params", space="nb201", **SMALL)


@pytest.fixture(scope="module")
def archs():
    return SPACE.sample_unique(24, 1)


def test_quantiles_are_mid_ranks_in_the_open_unit_interval():
    ref = np.array([1.0, 2.0, 3.0])
    q = _quantile(ref, np.array([0.0, 2.0, 5.0, np.nan]))
    assert np.all((q > 0) & (q < 1)) and q[0] < q[1] < q[2] and q[3] == q[0]


def test_a_member_with_all_the_weight_decides_the_ranking(archs):
    stack = StackedPredictor(params_base(), "nb201", ["flops"], SMALL, reference_size=32, weights=[0.0, 1.0])
    stack.fit(archs[:4], [1.0, 2.0, 3.0, 4.0])
    flops = ZeroCostPredictor("flops", space="nb201", **SMALL).predict(archs)[0]
    mean, std = stack.predict(archs)
    assert spearmanr(mean, flops)[0] > 0.95 and np.all(std == 0)


def test_predictions_are_in_the_base_predictors_units(archs):
    stack = StackedPredictor(params_base(), "nb201", ["naswot"], SMALL, reference_size=32).fit(archs[:4], [0.0] * 4)
    mean, _ = stack.predict(archs)
    reference = params_base().predict(stack.reference_)[0]
    assert reference.min() <= mean.min() and mean.max() <= reference.max()
    equal = StackedPredictor(params_base(), "nb201", ["naswot"], SMALL, reference_size=32)
    assert np.allclose(equal.weights, [0.5, 0.5])


def test_bad_use_raises_clear_errors(archs):
    with pytest.raises(ValueError, match="weights must be 2 non-negative"):
        StackedPredictor(params_base(), "nb201", ["flops"], SMALL, weights=[1.0])
    stack = StackedPredictor(params_base(), "nb201", ["flops"], SMALL, reference_size=8)
    with pytest.raises(RuntimeError, match="not calibrated"):
        stack.predict(archs[:2])
    stack.calibrate()
    with pytest.raises(ValueError, match="predicts nb201 Arch values only"):
        stack.predict([get_space("nb101").sample(np.random.default_rng(0))])


def test_a_learning_member_is_fitted_on_the_target_labels_only():
    from predictors.embedding_gp import EmbeddingGPPredictor
    from predictors.embeddings import ArchEmbeddings

    pool = SPACE.sample_unique(300, 2)
    embeddings = ArchEmbeddings.one_hot(SPACE, pool)
    truth = {a.key: a.spec.count("nor_conv_3x3") + 0.5 * a.spec.count("nor_conv_1x1") for a in pool}
    gp = EmbeddingGPPredictor(embeddings)
    other = get_space("nb101").sample(np.random.default_rng(0))  # the base learns it, the GP must not see it
    stack = StackedPredictor(params_base(), "nb201", [gp], weights=[0.0, 1.0])
    stack.reference_ = pool  # scored by the params proxy: quick
    labelled = pool[:60]
    stack.fit([other, *labelled], [0.0, *(truth[a.key] for a in labelled)])
    assert len(gp.gp_.model_.train_inputs[0]) == 60
    alone, stacked = gp.predict(pool[60:])[0], stack.predict(pool[60:])[0]
    truth_rest = [truth[a.key] for a in pool[60:]]
    assert spearmanr(alone, truth_rest)[0] > 0.6  # 0.71 measured: 60 labels, 30 one-hot dims
    assert spearmanr(stacked, alone)[0] > 0.98  # all the weight on the GP: its ranking
    with pytest.raises(ValueError, match="fit needs >= 2"):
        StackedPredictor(params_base(), "nb201", [EmbeddingGPPredictor(embeddings)], reference_size=8).fit([other], [1.0])
    with pytest.raises(KeyError, match="no embedding"):
        gp.predict([a for a in SPACE.sample_unique(2000, 9) if a not in embeddings][:1])
