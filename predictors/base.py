"""The predictor interface every predictor and every consumer of one shares.

scikit-learn's shape: ``fit(items, y)`` returns the fitted predictor, ``predict(items)``
returns ``(mean, std)`` arrays of one value per item (``std`` is zeros for a predictor
without uncertainty, e.g. a zero-cost proxy).  Items are whatever the predictor reads:
architectures, modules, or feature rows.  Searchers, schedulers, stacking and ensembles take
any object of this shape.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class FittedPredictor(Protocol):
    """What a consumer of predictions needs (e.g. a search prior): ``predict`` alone."""

    def predict(self, items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Predictor(FittedPredictor, Protocol):
    """What a consumer that fits the predictor itself needs."""

    def fit(self, items: Sequence[Any], y: Sequence[float]) -> "Predictor": ...


def check_predictor(predictor: Any, items: str = "items", what: str = "predictor") -> Any:
    """``predictor`` if it has callable ``fit`` and ``predict``; else a ValueError naming the
    interface (``items``: what the consumer passes it, e.g. ``"archs"``)."""
    if not (isinstance(predictor, Predictor) and callable(predictor.fit) and callable(predictor.predict)):
        raise ValueError(
            f"{what} must have fit({items}, y) and predict({items}) -> (mean, std); got {type(predictor).__name__}"
        )
    return predictor
