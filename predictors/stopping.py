"""Predictive early stopping: a Ray Tune scheduler that stops trials whose predicted final
metric cannot reach the current top-k.

A trial is judged once at each milestone ``m`` of ``time_attr`` (``grace_period``, then
``grace_period * milestone_factor``, ``grace_period * milestone_factor**2``, ... below
``max_t``), at its first report at or after ``m``.  Its learning curve up to that report is
summarised as ``[last value, best value]`` (in "higher is better" units, so ``mode="min"``
needs nothing special), optionally followed by architecture features ``features(config)``.
A predictor fitted on the completed trials (summary at ``m`` -> final value) gives the
trial's final value as ``(mean, std)``, and the trial is stopped when

    mean + z * std  <  k-th best final value of the completed trials   (k = top_k)

Safeguards, ASHA-like: nothing is stopped before ``grace_period`` nor on a trial's last
report (``done``); nothing is stopped while fewer than ``min_completed`` completed trials
reached the milestone (until then the scheduler is FIFO, no stopping at all); a trial whose
value at the milestone is in the top ``keep_fraction`` of the values recorded there by every
trial so far always continues.

The predictor is anything scikit-learn shaped: ``fit(X, y)`` and ``predict(X) -> (mean,
std)`` with ``X`` the rows above, e.g. :class:`BayesianLinearPredictor` (the default) or
``predictors.GPSurrogate(max_train=None)``.  An architecture predictor that works on
embeddings plugs in through ``features``, e.g.
``features=lambda config: embeddings.vector(space.decode(config))``.
"""
from __future__ import annotations

import copy
import logging
import math
import numbers
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import ray.cloudpickle as pickle
from ray.tune.experiment import Trial
from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from sklearn.linear_model import BayesianRidge

from predictors.base import check_predictor

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController

logger = logging.getLogger(__name__)

MODES = ("min", "max")


class BayesianLinearPredictor:
    """Bayesian linear regression (scikit-learn ``BayesianRidge``) with a predictive std.

    Inputs are standardised column-wise; ``predict`` returns the posterior predictive mean
    and standard deviation (observation noise plus weight uncertainty) in the units of ``y``.
    Cheap enough to refit after every completed trial.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> "BayesianLinearPredictor":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2 or len(X) != len(y) or len(y) < 2:
            raise ValueError(f"BayesianLinearPredictor.fit needs X [n, d] and y [n], n >= 2; got {X.shape} and {y.shape}")
        self.center_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.model_ = BayesianRidge().fit((X - self.center_) / self.scale_, y)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = (np.asarray(X, dtype=np.float64) - self.center_) / self.scale_
        mean, std = self.model_.predict(X, return_std=True)
        return mean, std


class PredictiveStoppingScheduler(FIFOScheduler):
    """Stops trials whose predicted final ``metric`` cannot reach the top ``top_k``.

    Args:
        time_attr: monotonically increasing progress attribute of the results
            (``training_iteration``, ``epoch``, ``time_total_s``, ...).
        metric: the result attribute to optimise; ``None`` takes Tune's (``TuneConfig``).
        mode: ``"min"`` or ``"max"``; ``None`` takes Tune's.
        grace_period: no trial is stopped before it reports ``time_attr >= grace_period``;
            also the first milestone.
        milestone_factor: milestones grow geometrically by this factor (> 1).
        max_t: the full schedule; results at or beyond it are never judged, and only trials
            that reach it count as completed (``None``: every trial that ends without being
            stopped by this scheduler counts, with its last value as final).
        top_k: a trial must be predicted to be able to reach the k-th best final value.
        z: uncertainty margin; stop only when ``mean + z * std`` is below that value.
        keep_fraction: a trial in this top fraction of the values recorded at a milestone
            always continues (0 turns the safeguard off).
        min_completed: completed trials needed (at a milestone) before anything is stopped.
        predictor: template predictor, copied per milestone; default
            :class:`BayesianLinearPredictor`.
        features: optional ``features(config) -> vector`` of architecture features appended
            to the curve summary (e.g. log parameter count, an embedding).
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 1,
        milestone_factor: float = 3.0,
        max_t: float | None = None,
        top_k: int = 5,
        z: float = 1.0,
        keep_fraction: float = 0.1,
        min_completed: int = 5,
        predictor: Any = None,
        features: Callable[[dict[str, Any]], Sequence[float]] | None = None,
    ):
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if not grace_period > 0:
            raise ValueError(f"grace_period must be > 0, got {grace_period!r}")
        if not milestone_factor > 1:
            raise ValueError(f"milestone_factor must be > 1, got {milestone_factor!r}")
        if max_t is not None and not max_t > grace_period:
            raise ValueError(f"max_t must be > grace_period ({grace_period}), got {max_t!r}")
        if not (isinstance(top_k, int) and top_k >= 1):
            raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
        if not 0 <= keep_fraction < 1:
            raise ValueError(f"keep_fraction must be in [0, 1), got {keep_fraction!r}")
        if not (isinstance(min_completed, int) and min_completed >= 2):
            raise ValueError(f"min_completed must be an integer >= 2 (a predictor needs two points), got {min_completed!r}")
        predictor = BayesianLinearPredictor() if predictor is None else check_predictor(predictor, "X")
        super().__init__()
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._grace_period = grace_period
        self._milestone_factor = milestone_factor
        self._max_t = max_t
        self._top_k = top_k
        self._z = z
        self._keep_fraction = keep_fraction
        self._min_completed = min_completed
        self._predictor = predictor
        self._features = features
        self._curves: dict[str, list[tuple[float, float]]] = {}  # trial id -> (time, score), score: higher is better
        self._arch_features: dict[str, np.ndarray] = {}
        self._finals: dict[str, float] = {}  # completed trial id -> final score
        self._recorded: dict[float, dict[str, float]] = {}  # milestone -> trial id -> score there
        self._stopped: set[str] = set()
        self._models: dict[float, tuple[int, Any]] = {}  # milestone -> (training rows, fitted predictor)

    # ------------------------------------------------------------------ Tune interface
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if (self._metric and metric) or (self._mode and mode):
            return False
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    def on_trial_add(self, tune_controller: "TuneController", trial: Trial) -> None:
        if not self._metric or not self._mode:
            raise ValueError(
                f"{type(self).__name__} has no metric ({self._metric!r}) or mode ({self._mode!r}); pass "
                "metric= and mode= ('min' or 'max') to the scheduler or to tune.TuneConfig"
            )

    def on_trial_result(self, tune_controller: "TuneController", trial: Trial, result: dict) -> str:
        if not self._usable(result) or trial.trial_id in self._stopped:
            return TrialScheduler.CONTINUE
        time = float(result[self._time_attr])
        self._append(trial, time, result[self._metric])
        if result.get("done") or time < self._grace_period or (self._max_t is not None and time >= self._max_t):
            return TrialScheduler.CONTINUE
        milestone = self._milestone(time)
        recorded = self._recorded.setdefault(milestone, {})
        if trial.trial_id in recorded:
            return TrialScheduler.CONTINUE
        score = recorded[trial.trial_id] = self._curves[trial.trial_id][-1][1]
        if self._should_stop(trial.trial_id, milestone, score):
            self._stopped.add(trial.trial_id)
            self._forget(trial)
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: "TuneController", trial: Trial, result: dict) -> None:
        if trial.trial_id in self._stopped:
            return
        if self._usable(result):
            self._append(trial, float(result[self._time_attr]), result[self._metric])
        curve = self._curves.get(trial.trial_id)
        if curve and (self._max_t is None or curve[-1][0] >= self._max_t):
            self._finals[trial.trial_id] = curve[-1][1]
        else:
            self._forget(trial)

    def on_trial_error(self, tune_controller: "TuneController", trial: Trial) -> None:
        self._forget(trial)

    def on_trial_remove(self, tune_controller: "TuneController", trial: Trial) -> None:
        self._forget(trial)

    def debug_string(self) -> str:
        threshold = self._threshold()
        shown = "none yet" if threshold is None else f"{self._sign * threshold:.4g}"
        return (
            f"Using PredictiveStopping: num_stopped={len(self._stopped)}, completed={len(self._finals)}, "
            f"top-{self._top_k} {self._metric} to reach: {shown}."
        )

    def save(self, checkpoint_path: str) -> None:
        state = {k: v for k, v in self.__dict__.items() if k != "_models"}
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        self._models = {}

    # ------------------------------------------------------------------ the rule
    @property
    def _sign(self) -> float:
        return 1.0 if self._mode == "max" else -1.0

    def _usable(self, result: dict) -> bool:
        """Whether ``result`` holds a finite time attribute and a finite metric value."""
        values = (result.get(self._time_attr), result.get(self._metric))
        return all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values)

    def _append(self, trial: Trial, time: float, value: float) -> None:
        curve = self._curves.setdefault(trial.trial_id, [])
        if curve and time <= curve[-1][0]:
            return  # the final result is seen twice: on_trial_result, then on_trial_complete
        curve.append((time, self._sign * float(value)))
        if self._features is not None and trial.trial_id not in self._arch_features:
            self._arch_features[trial.trial_id] = np.asarray(self._features(trial.config), dtype=np.float64).ravel()

    def _forget(self, trial: Trial) -> None:
        self._curves.pop(trial.trial_id, None)
        self._arch_features.pop(trial.trial_id, None)

    def _milestone(self, time: float) -> float:
        """The largest milestone at or below ``time`` (``time >= grace_period``)."""
        steps = math.floor(math.log(time / self._grace_period) / math.log(self._milestone_factor) + 1e-9)
        return self._grace_period * self._milestone_factor ** max(steps, 0)

    def _summary(self, trial_id: str, milestone: float) -> np.ndarray | None:
        """Curve summary at the first report at or after ``milestone`` (None: never got there)."""
        curve = self._curves[trial_id]
        reach = next((i for i, (time, _) in enumerate(curve) if time >= milestone), None)
        if reach is None:
            return None
        scores = [score for _, score in curve[: reach + 1]]
        row = np.array([scores[-1], max(scores)])
        if self._features is not None:
            row = np.concatenate([row, self._arch_features[trial_id]])
        return row

    def _threshold(self) -> float | None:
        """The k-th best final score so far (the k-th best of fewer, the worst)."""
        if not self._finals:
            return None
        finals = sorted(self._finals.values(), reverse=True)
        return finals[min(self._top_k, len(finals)) - 1]

    def _should_stop(self, trial_id: str, milestone: float, score: float) -> bool:
        here = list(self._recorded[milestone].values())
        if self._keep_fraction > 0 and score >= np.quantile(here, 1 - self._keep_fraction):
            return False
        model = self._model(milestone)
        if model is None:
            return False
        mean, std = model.predict(self._summary(trial_id, milestone)[None, :])
        bound = float(np.asarray(mean).reshape(-1)[0]) + self._z * float(np.asarray(std).reshape(-1)[0])
        threshold = self._threshold()
        logger.debug(
            "trial %s at %s=%s: predicted bound %.4g vs top-%d %.4g",
            trial_id, self._time_attr, milestone, bound, self._top_k, threshold,
        )
        return bound < threshold

    def _model(self, milestone: float) -> Any:
        """The predictor fitted on completed trials at ``milestone``; None below min_completed."""
        rows = [(self._summary(t, milestone), final) for t, final in self._finals.items()]
        rows = [(x, final) for x, final in rows if x is not None]
        if len(rows) < self._min_completed:
            return None
        fitted = self._models.get(milestone)
        if fitted is None or fitted[0] != len(rows):
            X = np.stack([x for x, _ in rows])
            y = np.array([final for _, final in rows])
            fitted = (len(rows), copy.deepcopy(self._predictor).fit(X, y))
            self._models[milestone] = fitted
        return fitted[1]
