"""BOHB (Falkner et al. 2018) on maintained parts: a TPE model per budget over Tune's HyperBand brackets.

Ray Tune's own ``TuneBOHB`` needs ``hpbandster`` (last released 2018; it pulls Pyro4, serpent,
netifaces built from C and statsmodels) and ``ConfigSpace``; neither is a raynas dependency.  This
module rebuilds BOHB from what raynas already uses:

* the scheduler is Ray's ``HyperBandForBOHB`` (:func:`bohb_scheduler`), with a smallest budget
  ``min_t`` (Ray's own HyperBand always goes down to about one ``time_attr`` unit);
* the model is hyperopt's TPE (:class:`BudgetedTPE`): every result a trial reports is an
  observation at its budget (its ``training_iteration``, the epochs trained); a proposal is TPE
  fitted on the largest budget with at least ``min_points`` observations, as BOHB fits its KDE, and
  a ``random_fraction`` of proposals are random draws (BOHB's defaults: a third, the best 15 %
  counted good, 64 candidates scored);
* :class:`BOHBSearcher` never repeats an architecture (:class:`~searchers.unique.UniqueArchSearcher`)
  and keeps its own concurrency, counting trials HyperBand paused as not running, so new trials can
  fill a bracket while others wait in it.
"""
from __future__ import annotations

import logging
import math
import pickle
from typing import Any

import numpy as np
from ray.tune.schedulers import HyperBandForBOHB
from ray.tune.search import Searcher

from searchers.unique import UniqueArchSearcher

#: the result key that measures a budget (epochs trained), for the model and the scheduler alike
TIME_ATTR = "training_iteration"


class BudgetedTPE(Searcher):
    """TPE over ``domains`` refitted per proposal on the largest well-observed budget (BOHB's model).

    Args:
        domains: Tune sampling domains (a space's ``tune_space()``).
        seed: seeds the random-draw coin and each proposal's TPE.
        min_points: observations a budget needs before it is modelled (default: dimensions + 1, as BOHB).
        random_fraction: share of proposals drawn at random whatever the model says.
        gamma: share of a budget's observations counted good.
        n_EI_candidates: draws from the good density scored by expected improvement.
    """

    def __init__(
        self,
        domains: dict,
        seed: int | None = None,
        metric: str | None = None,
        mode: str | None = None,
        min_points: int | None = None,
        random_fraction: float = 1 / 3,
        gamma: float = 0.15,
        n_EI_candidates: int = 64,
    ):
        super().__init__(metric=metric, mode=mode)
        self.domains = domains
        self.seed = seed
        self.min_points = len(domains) + 1 if min_points is None else min_points
        self.random_fraction = random_fraction
        self.gamma = gamma
        self.n_EI_candidates = n_EI_candidates
        self.rng = np.random.default_rng(seed)
        self.proposals = 0
        self.configs: dict[str, dict] = {}  # trial id -> its config, while it runs
        self.observations: dict[int, dict[str, tuple[dict, float]]] = {}  # budget -> trial id -> (config, value)

    def model_budget(self) -> int | None:
        """The largest budget with ``min_points`` observations (None: none yet, draw at random)."""
        ready = [b for b, points in self.observations.items() if len(points) >= self.min_points]
        return max(ready) if ready else None

    def suggest(self, trial_id: str) -> dict | None:
        from searchers.hyperopt_tpe import hyperopt_tpe

        budget = self.model_budget()
        if self.rng.random() < self.random_fraction:
            budget = None
        seed = None if self.seed is None else (self.seed * 1_000_003 + self.proposals) % 2**31
        self.proposals += 1
        # no points and num_initial 1: hyperopt draws from the prior, i.e. at random.  Tune warns
        # on every construction that the domains are unresolved; they are, by design, here
        log = logging.getLogger("ray.tune.search.hyperopt.hyperopt_search")
        level, log.level = log.level, logging.ERROR
        try:
            tpe = hyperopt_tpe(self.domains, seed, 1, self.gamma, self.n_EI_candidates, self.metric, self.mode)
        finally:
            log.setLevel(level)
        for config, value in (self.observations.get(budget, {}) if budget is not None else {}).values():
            tpe.add_evaluated_point(config, value)
        config = tpe.suggest(trial_id)
        self.configs[trial_id] = config
        return config

    def track(self, trial_id: str, config: dict) -> None:
        """Learn the results of ``trial_id``, a trial of ``config`` this model did not propose."""
        self.configs[trial_id] = dict(config)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._observe(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if not error and result:
            self._observe(trial_id, result)
        self.configs.pop(trial_id, None)

    def add_evaluated_point(
        self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:  # fmt: skip
        """A point learnt outside a trial (a warm start) counts at the budget of its
        ``intermediate_values`` (one per epoch), else at budget 0: below every trained budget."""
        if error or pruned or value is None:
            return
        budget = len(intermediate_values) if intermediate_values else 0
        points = self.observations.setdefault(budget, {})
        points[f"point-{len(points)}"] = (dict(parameters), float(value))

    def _observe(self, trial_id: str, result: dict) -> None:
        config, value, budget = self.configs.get(trial_id), result.get(self.metric), result.get(TIME_ATTR)
        if config is None or budget is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self.observations.setdefault(int(budget), {})[trial_id] = (config, float(value))

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


def budgeted_tpe(domains: dict, seed: int | None, options: dict[str, Any], metric: str, mode: str) -> BudgetedTPE:
    """:class:`BudgetedTPE` once metric and mode are known (a picklable ``make_inner``)."""
    return BudgetedTPE(domains, seed, metric, mode, **options)


class BOHBSearcher(UniqueArchSearcher):
    """:class:`BudgetedTPE` over a space without repeats, with concurrency that ignores paused
    trials (``set_max_concurrency`` returns True, so Tune's limiter leaves it to this class)."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.max_concurrent = 0  # 0: no limit
        self.running: set[str] = set()
        self.paused: set[str] = set()

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.max_concurrent and len(self.running) >= self.max_concurrent:
            return None
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            self.running.add(trial_id)
        return config

    def _accept(self, trial_id: str, arch: Any, inner_id: str | None) -> dict:
        if inner_id is None:  # a fallback architecture: the model learns its results by budget too
            inner_id = f"{trial_id}~fallback"
            self.inner.track(inner_id, self.space.encode(arch))
        return super()._accept(trial_id, arch, inner_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.paused:
            self.running.add(trial_id)
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.running.discard(trial_id)
        self.paused.discard(trial_id)
        super().on_trial_complete(trial_id, result, error)

    def on_pause(self, trial_id: str) -> None:
        """HyperBand paused the trial at a rung: its slot is free for a new trial."""
        self.paused.add(trial_id)
        self.running.discard(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.paused.discard(trial_id)
        self.running.add(trial_id)

    def get_state(self) -> dict:
        return {**super().get_state(), "running": set(self.running), "paused": set(self.paused),
                "max_concurrent": self.max_concurrent}  # fmt: skip

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.running, self.paused = set(state["running"]), set(state["paused"])
        self.max_concurrent = state["max_concurrent"]


class BudgetedHyperBandForBOHB(HyperBandForBOHB):
    """Ray's ``HyperBandForBOHB`` whose brackets start at ``min_t``: budgets
    ``max_t / eta**s`` for ``s = 0 .. round(log_eta(max_t / min_t))`` (Ray's own goes down to 1)."""

    def __init__(self, max_t: int, min_t: int = 1, reduction_factor: float = 3, **kw: Any):
        if not (isinstance(min_t, int) and isinstance(max_t, int) and 1 <= min_t <= max_t):
            raise ValueError(f"BOHB budgets need integers 1 <= min_t <= max_t (epochs), got min_t={min_t!r}, max_t={max_t!r}")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor (BOHB's eta) must be > 1, got {reduction_factor!r}")
        super().__init__(time_attr=TIME_ATTR, max_t=max_t, reduction_factor=reduction_factor, **kw)
        self._s_max_1 = int(np.round(np.log(max_t / min_t) / np.log(reduction_factor))) + 1
        self.min_t = min_t
        if any(not math.isclose(self._get_r0(s) * reduction_factor**s, max_t) for s in range(self._s_max_1)):
            raise ValueError(f"BOHB budgets must grow by reduction_factor={reduction_factor!r} from min_t={min_t} up to "
                             f"max_t={max_t} exactly (max_t = min_t * eta**k), else Ray's brackets stop short of max_t")  # fmt: skip

    def budgets(self) -> list[int]:
        """The budgets (epochs) of the brackets, smallest first."""
        return sorted({self._get_r0(s) for s in range(self._s_max_1)})


#: options of :func:`bohb_scheduler` (``scheduler_options`` of a search)
SCHEDULER_OPTIONS = ("min_t", "reduction_factor")


def bohb_scheduler(max_t: int, metric: str | None = None, mode: str | None = None, **options: Any) -> BudgetedHyperBandForBOHB:
    """The scheduler a ``bohb`` search runs with: budgets in epochs up to ``max_t``;
    ``min_t`` (default ``max_t / eta**2``, else ``max_t / eta``, else ``max_t``: the first an
    integer) and ``reduction_factor`` (eta, default 3)."""
    unknown = set(options) - set(SCHEDULER_OPTIONS)
    if unknown:
        raise ValueError(f"unknown BOHB scheduler options {sorted(unknown)}; allowed: {list(SCHEDULER_OPTIONS)}")
    eta = options.get("reduction_factor", 3)
    if "min_t" in options:
        min_t = options["min_t"]
    else:  # the most brackets, up to three, whose budgets reach max_t exactly
        min_t = next(round(max_t / eta**s) for s in (2, 1, 0) if max_t / eta**s >= 1 and math.isclose(max_t / eta**s, round(max_t / eta**s)))
    return BudgetedHyperBandForBOHB(max_t, min_t, eta, metric=metric, mode=mode)
