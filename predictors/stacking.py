"""A trained predictor stacked with zero-cost proxies, for one target space.

Zero-cost proxies and a trained predictor make different mistakes (a proxy reads one random
initialisation, the predictor reads the graph), so their combination ranks better than
either.  Their scores live on unrelated scales, so each member's score is turned into its
*quantile among an unlabelled reference sample of the target space* (random architectures:
no labels needed, and the transform does not depend on which items are predicted together).
The stacked score is a weighted mean of those quantiles, equal weights unless the caller
gives others.  Weights are deliberately not fitted on the labelled items: the base predictor
was trained on them, so its in-sample scores look better than they are and least squares
hands it nearly all the weight (``bench/predictor_transfer.py`` compares both).

``predict`` maps the stacked score back to the base predictor's label units through the base
predictor's predictions on the reference sample (quantile to quantile), and passes the base
predictor's ``std`` through.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from predictors.zero_cost import ZeroCostPredictor
from raynas.arch import Arch
from search_spaces import get_space


class StackedPredictor:
    """``base`` (anything with ``fit(items, y)`` / ``predict(items) -> (mean, std)``, e.g. a
    :class:`~predictors.cg.CGPredictor`) stacked with zero-cost ``proxies`` on ``space``.

    Args:
        base: the trained predictor.
        space: the target space (name); items to predict are its Arch values.
        proxies: :class:`~predictors.zero_cost.ZeroCostPredictor` instances, or proxy names built
            with ``zero_cost_options``, or other predictors of the target space to be fitted
            on its labelled items only (e.g. an
            :class:`~predictors.embedding_gp.EmbeddingGPPredictor`).
        zero_cost_options: keyword arguments for proxies given by name (dataset, build, ...).
        reference_size: unlabelled architectures of ``space`` the quantiles are taken against.
        weights: one per member (base first, then the proxies); default equal.
        seed: draws the reference sample.
    """

    def __init__(
        self,
        base: Any,
        space: str,
        proxies: Sequence[ZeroCostPredictor | str] = ("naswot", "jacov"),
        zero_cost_options: dict[str, Any] | None = None,
        reference_size: int = 256,
        weights: Sequence[float] | None = None,
        seed: int = 0,
    ):
        if reference_size < 2:
            raise ValueError(f"reference_size must be >= 2, got {reference_size}")
        self.base = base
        self.space = get_space(space).name
        options = {"space": self.space, **(zero_cost_options or {})}
        self.proxies = [ZeroCostPredictor(p, **options) if isinstance(p, str) else p for p in proxies]
        count = 1 + len(self.proxies)
        w = np.full(count, 1.0) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (count,) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {count} non-negative numbers (base, then each proxy), not all 0; got {weights}")
        self.weights = w / w.sum()
        self.reference_size, self.seed = reference_size, seed
        self.reference_: list[Arch] | None = None
        self._reference_scores: dict[int, np.ndarray] = {}  # member index -> its sorted reference scores
        self._reference_base: np.ndarray | None = None

    @property
    def members(self) -> list[str]:
        return ["base", *(getattr(p, "proxy", type(p).__name__) for p in self.proxies)]

    def _learns(self, member: Any) -> bool:
        return not isinstance(member, ZeroCostPredictor)

    def fit(self, items: Sequence[Any], y: Sequence[float], **fit_kwargs: Any) -> "StackedPredictor":
        """Fit ``base`` on all ``items`` (``fit_kwargs`` go to it) and the learning members
        on the target space's items, then :meth:`calibrate`."""
        self.base.fit(items, y, **fit_kwargs)
        own = [i for i, item in enumerate(items) if isinstance(item, Arch) and item.space == self.space]
        learning = list(filter(self._learns, self.proxies))
        if learning and len(own) < 2:
            raise ValueError(f"{[type(m).__name__ for m in learning]} learn from {self.space} labels: fit needs >= 2 of them, got {len(own)}")
        for member in learning:
            member.fit([items[i] for i in own], [y[i] for i in own])
        return self.calibrate()

    def calibrate(self) -> "StackedPredictor":
        """Score the reference sample with the (fitted) base predictor and learning members;
        call after refitting them."""
        self._reference_base = np.sort(self.base.predict(self._reference())[0])
        self._reference_scores = {k: v for k, v in self._reference_scores.items() if not self._learns(self.proxies[k])}
        return self

    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` in the base predictor's label units (see the module docstring)."""
        if self._reference_base is None:
            raise RuntimeError("StackedPredictor is not calibrated: call fit(items, y), or calibrate() on a fitted base")
        archs = list(archs)
        wrong = [a for a in archs if not isinstance(a, Arch) or a.space != self.space]
        if wrong:
            raise ValueError(f"StackedPredictor predicts {self.space} Arch values only; got {wrong[0]!r}")
        base, std = self.base.predict(archs)
        stacked = self.weights @ self._quantiles(archs, base)
        ref = self._reference_base
        return np.interp(stacked, (np.arange(len(ref)) + 0.5) / len(ref), ref), std

    def _reference(self) -> list[Arch]:
        if self.reference_ is None:
            self.reference_ = get_space(self.space).sample_unique(self.reference_size, self.seed)
        return self.reference_

    def _quantiles(self, archs: list[Arch], base: np.ndarray) -> np.ndarray:
        """``members x len(archs)``: each member's score (``base``: the base predictor's) as a
        quantile among the reference sample."""
        rows = [_quantile(self._reference_base, base)]  # type: ignore[arg-type]
        for k, member in enumerate(self.proxies):
            if k not in self._reference_scores:
                scores = np.nan_to_num(member.predict(self._reference())[0], nan=-np.inf)
                self._reference_scores[k] = np.sort(scores)
            rows.append(_quantile(self._reference_scores[k], member.predict(archs)[0]))
        return np.array(rows)


def _quantile(sorted_reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mid-rank of each value among ``sorted_reference``, in (0, 1); NaN scores rank lowest."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    below = np.searchsorted(sorted_reference, values, side="left")
    upto = np.searchsorted(sorted_reference, values, side="right")
    return (below + upto + 1) / (2 * len(sorted_reference) + 2)
