"""Tune searchers over a box of floats ``{z0: uniform(lower[0], upper[0]), ...}``.

The embedding pool searcher lets any Tune searcher propose points in an embedding space; these
are the ones it builds by name: hyperopt's TPE (Tune's ``HyperOptSearch``), any nevergrad
optimizer (Tune's ``NevergradSearch``, started from a seeded random point and able to take
points it did not propose) and Ax (a small searcher on ``ax.Client``: Ray's ``AxSearch``
targets the retired ``AxClient``).  Each maximises the metric ``score``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.nevergrad import NevergradSearch

#: the metric a box searcher maximises
SCORE = "score"
#: the workers nevergrad is told about: with one, NGOpt may pick a sequential method (Cobyla,
#: CmaFmin2) whose ``ask`` blocks until the previous point is told, so a second trial started
#: before the first finished would hang the search; with two it picks one that asks freely
NEVERGRAD_WORKERS = 2


def box_keys(dim: int) -> list[str]:
    return [f"z{i}" for i in range(dim)]


def make_box_searcher(optimizer: str, lower: np.ndarray, upper: np.ndarray, seed: int | None, budget: int) -> Searcher:
    """``nevergrad:<Name>``, ``hyperopt:tpe`` or ``ax`` over the box ``[lower, upper]``."""
    family, _, name = optimizer.partition(":")
    if family == "nevergrad":
        return NevergradBoxSearch(name or "NGOpt", lower, upper, budget, seed)
    if family == "hyperopt" and name in ("", "tpe"):
        from ray.tune.search.hyperopt import HyperOptSearch

        domains = {key: tune.uniform(float(lo), float(hi)) for key, lo, hi in zip(box_keys(len(lower)), lower, upper)}
        return HyperOptSearch(domains, SCORE, "max", n_initial_points=10, random_state_seed=seed, gamma=0.25)
    if family == "ax" and not name:
        return AxBoxSearch(lower, upper, seed)
    raise ValueError(f"unknown optimizer {optimizer!r}; allowed: 'nevergrad:<Name>', 'hyperopt:tpe', 'ax'")


class NonBlockingNevergradSearch(NevergradSearch):
    """Tune's ``NevergradSearch`` whose ``suggest`` never blocks.

    The optimizer is told :data:`NEVERGRAD_WORKERS` workers.  One that cannot work in
    parallel (``no_parallelization``, e.g. ``Cobyla``) is built for one worker, and while its
    point is out ``suggest`` returns ``None`` (Tune's "wait") instead of blocking in ``ask``.
    """

    def __init__(self, optimizer: Any, budget: int, space: Any, metric: str | None, mode: str | None):
        workers = NEVERGRAD_WORKERS
        try:
            optimizer(parametrization=space, budget=budget, num_workers=workers)
        except ValueError as err:  # nevergrad's "... does not support parallelization"
            if "parallelization" not in str(err):
                raise
            workers = 1
        self.sequential = workers == 1
        self._worst_loss, self._told_any = 0.0, False  # the largest loss told (0 before any)
        super().__init__(optimizer, {"budget": budget, "num_workers": workers}, space, metric, mode)

    def suggest(self, trial_id: str) -> dict | None:
        if self.sequential and self._live_trial_mapping:
            return None
        return super().suggest(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """A sequential optimizer waits for every point it asked to be told, so a failed one
        is told the worst loss told so far (0 before any); the others are told nothing."""
        value = None if error or not result else result.get(self._metric)
        candidate = self._live_trial_mapping.get(trial_id)
        if candidate is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            if self.sequential:
                self._nevergrad_opt.tell(candidate, self._worst_loss)
            self._live_trial_mapping.pop(trial_id)
            return
        super().on_trial_complete(trial_id, result, error)

    def _process_result(self, trial_id: str, result: dict) -> None:
        super()._process_result(trial_id, result)
        loss = self._metric_op * result[self._metric]
        self._worst_loss = max(self._worst_loss, loss) if self._told_any else loss
        self._told_any = True


class NevergradBoxSearch(NonBlockingNevergradSearch):
    """Tune's ``NevergradSearch`` on the box, from a seeded random start.

    NGOpt picks a deterministic local method for small budgets in few dimensions, which from
    the box centre would walk the same path for every seed.  ``add_evaluated_point`` tells the
    optimizer a point it never proposed (how a restored searcher is rebuilt: nevergrad's
    sequential optimizers cannot be pickled).
    """

    def __init__(self, name: str, lower: np.ndarray, upper: np.ndarray, budget: int, seed: int | None):
        import nevergrad as ng

        if name not in ng.optimizers.registry:
            raise ValueError(f"unknown nevergrad optimizer {name!r}; e.g. NGOpt, OnePlusOne, DE, CMA, TwoPointsDE")
        random_state = np.random.RandomState(seed)
        start = random_state.uniform(lower, upper)
        parametrization = ng.p.Instrumentation(**{
            key: ng.p.Scalar(init=float(x), lower=float(lo), upper=float(hi))
            for key, x, lo, hi in zip(box_keys(len(lower)), start, lower, upper)
        })  # fmt: skip
        parametrization.random_state = random_state
        super().__init__(ng.optimizers.registry[name], budget, parametrization, SCORE, "max")

    def add_evaluated_point(
        self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:  # fmt: skip
        if error or pruned:
            return
        optimizer = self._nevergrad_opt
        candidate = optimizer.parametrization.spawn_child(new_value=((), {k: float(v) for k, v in parameters.items()}))
        optimizer.tell(candidate, -float(value))  # nevergrad minimises


class AxBoxSearch(Searcher):
    """Ax's default generation strategy (Sobol, then BoTorch) on the box, as a Tune ``Searcher``."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, seed: int | None):
        from ax import Client, RangeParameterConfig

        super().__init__(metric=SCORE, mode="max")
        self.client = Client(random_seed=seed)
        self.client.configure_experiment(
            parameters=[
                RangeParameterConfig(name=key, parameter_type="float", bounds=(float(lo), float(hi)))
                for key, lo, hi in zip(box_keys(len(lower)), lower, upper)
            ]
        )
        self.client.configure_optimization(objective=SCORE)
        self.trials: dict[str, int] = {}  # Tune trial id -> Ax trial index

    def suggest(self, trial_id: str) -> dict | None:
        ((index, parameters),) = self.client.get_next_trials(max_trials=1).items()
        self.trials[trial_id] = index
        return dict(parameters)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        index = self.trials.pop(trial_id, None)
        if index is None:
            return
        if error or not result or SCORE not in result:
            self.client.mark_trial_failed(index)
        else:
            self.client.complete_trial(index, raw_data={SCORE: float(result[SCORE])})

    def add_evaluated_point(
        self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:  # fmt: skip
        if not (error or pruned):
            index = self.client.attach_trial(parameters={k: float(v) for k, v in parameters.items()})
            self.client.complete_trial(index, raw_data={SCORE: float(value)})
