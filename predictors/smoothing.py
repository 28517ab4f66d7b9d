"""A pool's predicted scores averaged along the space's moves (a lazy random walk on its move graph).

Accuracy varies little between architectures one edit apart, but a predictor fitted elsewhere
(the CG predictor on other spaces' tables) errs on each architecture more independently.  So on
a pool that holds neighbourhoods (a finite space enumerated, like NB201's 8,765 classes), each
score mixed with the mean of its neighbours' scores keeps the signal and averages part of the
error away; no label of the pool's space is used.  ``steps`` applications of
``s <- (1 - alpha) * s + alpha * P s`` (``P``: each member's mean over its neighbours in the
pool) are a low-pass filter on the move graph; too many flatten real differences.  The walk
runs on the normal scores of the ranks, so two predictors that rank a pool alike are smoothed
alike however they spread their outputs (a mean over values would weigh a predictor's own
scale); the result is mapped back onto the input's values by rank.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import sparse

from predictors.gp import normal_scores
from raynas.arch import Arch
from search_spaces import SearchSpace, as_space

#: the default mix and number of steps: measured on NB201's CIFAR-10 and ImageNet16-120 columns (README)
ALPHA, STEPS = 0.5, 2


def move_graph(archs: Sequence[Arch], space: SearchSpace | str | None = None) -> sparse.csr_matrix:
    """Row-stochastic matrix over ``archs``: row i averages the pool members one move (the
    space's ``neighbors``) from ``archs[i]``; a member with no neighbour in the pool keeps its
    own value (its row is the identity row)."""
    archs = list(archs)
    if not archs:
        return sparse.csr_matrix((0, 0))
    space = as_space(space or archs[0].space)
    index: dict[str, int] = {}
    for i, arch in enumerate(archs):
        if arch.space != space.name:
            raise ValueError(f"move_graph: {arch} is of space {arch.space!r}, not {space.name!r}")
        if index.setdefault(arch.key, i) != i:
            raise ValueError(f"move_graph: {arch} appears twice in the pool (canonical key {arch.key})")
    rows, cols = [], []
    for i, arch in enumerate(archs):
        near = {index[n.key] for n in space.neighbors(arch) if n.key in index} - {i}
        near = sorted(near) or [i]
        rows += [i] * len(near)
        cols += near
    counts = np.bincount(rows, minlength=len(archs))
    weights = 1.0 / counts[rows]
    return sparse.csr_matrix((weights, (rows, cols)), shape=(len(archs), len(archs)))


def check_smoothing(alpha: float, steps: int) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")


def smooth_over_moves(
    scores: np.ndarray,
    archs: Sequence[Arch],
    space: SearchSpace | str | None = None,
    alpha: float = ALPHA,
    steps: int = STEPS,
    graph: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """``scores`` of ``archs`` (a pool of one space, no duplicates) reordered by ``steps`` lazy
    random-walk steps on the move graph, ``s <- (1 - alpha) * s + alpha * P s``, taken on their
    normal scores: the same values, in the smoothed order.

    ``graph``: a :func:`move_graph` of the same pool, to reuse (building one asks the space for
    every member's neighbours)."""
    check_smoothing(alpha, steps)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(archs),):
        raise ValueError(f"smooth_over_moves: {scores.shape[0] if scores.ndim else 0} scores for {len(archs)} archs")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"smooth_over_moves: {int(np.sum(~np.isfinite(scores)))} scores are NaN or infinite")
    if steps == 0 or alpha == 0.0:
        return scores
    walk = move_graph(archs, space) if graph is None else graph
    if walk.shape != (len(archs), len(archs)):
        raise ValueError(f"smooth_over_moves: graph is {walk.shape}, the pool has {len(archs)} archs")
    smoothed = normal_scores(scores)
    for _ in range(steps):
        smoothed = (1.0 - alpha) * smoothed + alpha * (walk @ smoothed)
    out = np.empty_like(scores)
    out[np.argsort(smoothed, kind="stable")] = np.sort(scores)
    return out
