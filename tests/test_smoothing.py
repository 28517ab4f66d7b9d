"""Scores smoothed along a space's moves: the walk matrix, what smoothing keeps and removes, the errors."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from predictors.smoothing import move_graph, smooth_over_moves
from search_spaces import get_space

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def pool():
    archs = list(dict.fromkeys(SPACE.enumerate()))
    return archs, move_graph(archs)


def test_move_graph_averages_the_neighbours_in_the_pool():
    centre = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    near = SPACE.neighbors(centre)[:5]
    far = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # no move from the centre reaches it
    archs = [centre, *near, far]
    walk = move_graph(archs).toarray()
    np.testing.assert_allclose(walk.sum(axis=1), 1.0)
    np.testing.assert_allclose(walk[0, 1:6], 0.2)  # the centre averages its 5 neighbours, not itself
    assert walk[0, 0] == 0 and walk[0, 6] == 0
    assert walk[6, 6] == 1  # no neighbour in the pool: keeps its own value
    for i in range(1, 6):
        assert walk[i, 0] > 0  # moves are symmetric


def test_smoothing_removes_noise_and_keeps_the_signal(pool):
    archs, walk = pool
    configs = [SPACE.encode(a) for a in archs]
    signal = np.array([sum(v == "nor_conv_3x3" for v in c.values()) - 2.0 * (c["edge_3_0"] == "none") for c in configs])
    noisy = signal + np.random.default_rng(0).normal(0.0, 1.0, len(archs))
    smoothed = smooth_over_moves(noisy, archs, graph=walk)
    assert spearmanr(smoothed, signal)[0] > spearmanr(noisy, signal)[0] + 0.1
    constant = np.full(len(archs), 3.0)
    np.testing.assert_allclose(smooth_over_moves(constant, archs, graph=walk), constant)
    np.testing.assert_array_equal(smooth_over_moves(noisy, archs, steps=0, graph=walk), noisy)


def test_only_the_order_of_the_scores_matters(pool):
    """Two predictors that rank a pool alike are smoothed alike, and the values are kept."""
    archs, walk = pool
    scores = np.random.default_rng(2).normal(size=len(archs))
    smoothed = smooth_over_moves(scores, archs, graph=walk)
    stretched = smooth_over_moves(np.exp(4.0 * scores), archs, graph=walk)
    np.testing.assert_array_equal(np.argsort(smoothed), np.argsort(stretched))
    np.testing.assert_array_equal(np.sort(smoothed), np.sort(scores))
    assert not np.array_equal(smoothed, scores)


def test_the_graph_is_optional_and_the_same(pool):
    archs, walk = pool
    small = archs[:300]
    scores = np.random.default_rng(1).normal(size=300)
    np.testing.assert_allclose(smooth_over_moves(scores, small, SPACE), smooth_over_moves(scores, small, graph=move_graph(small)))


def test_errors_name_what_is_wrong(pool):
    archs, walk = pool
    a, b = archs[:2]
    with pytest.raises(ValueError, match="appears twice"):
        move_graph([a, b, a])
    with pytest.raises(ValueError, match="space 'nb201', not 'nb101'"):
        move_graph([a], "nb101")
    with pytest.raises(ValueError, match="1 scores are NaN"):
        smooth_over_moves([1.0, np.nan], [a, b])
    with pytest.raises(ValueError, match="3 scores for 2 archs"):
        smooth_over_moves([1.0, 2.0, 3.0], [a, b])
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        smooth_over_moves([1.0, 2.0], [a, b], alpha=1.5)
    for steps in (-1, 1.5, True):
        with pytest.raises(ValueError, match="steps must be an integer >= 0"):
            smooth_over_moves([1.0, 2.0], [a, b], steps=steps)
    with pytest.raises(ValueError, match="graph is"):
        smooth_over_moves([1.0, 2.0], [a, b], graph=walk)
