"""hyperopt's TPE as the optimiser inside :class:`~searchers.unique.UniqueArchSearcher`.

Tune's ``HyperOptSearch`` cannot take a point it did not propose, so the architectures the
wrapper picks instead of a repeat would never reach TPE's model; :class:`TaughtHyperOptSearch`
adds ``add_evaluated_point``.
"""
from __future__ import annotations

import copy
from functools import partial

import hyperopt
from hyperopt import tpe
from hyperopt.fmin import generate_trial
from ray.tune.search.hyperopt import HyperOptSearch


class TaughtHyperOptSearch(HyperOptSearch):
    """Tune's ``HyperOptSearch`` with ``add_evaluated_point``: the point goes into hyperopt's
    trials as a finished trial, built the way hyperopt builds the points it is asked to
    evaluate first (``generate_trial``), so TPE models it like one of its own."""

    def add_evaluated_point(
        self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:  # fmt: skip
        if error or pruned or value is None:
            return
        point = copy.deepcopy(parameters)
        self._convert_categories_to_indices(point)  # hyperopt stores a choice as its index
        (tid,) = self._hpopt_trials.new_trial_ids(1)
        trial = generate_trial(tid, point)
        trial["state"] = hyperopt.JOB_STATE_DONE
        trial["result"] = {"loss": self.metric_op * float(value), "status": hyperopt.STATUS_OK}
        self._hpopt_trials.insert_trial_docs([trial])
        self._hpopt_trials.refresh()


def hyperopt_tpe(
    domains: dict, seed: int | None, num_initial: int, gamma: float, n_EI_candidates: int, metric: str, mode: str
) -> TaughtHyperOptSearch:
    """:class:`TaughtHyperOptSearch` over ``domains`` whose ``algo`` is ``hyperopt.tpe.suggest``
    with all three options (HyperOptSearch forwards the first two only)."""
    inner = TaughtHyperOptSearch(space=domains, metric=metric, mode=mode, random_state_seed=seed)
    inner.algo = partial(tpe.suggest, n_startup_jobs=num_initial, gamma=gamma, n_EI_candidates=n_EI_candidates)
    return inner
