"""Ask/tell adapters that let black-box optimisers propose points in an embedding space.

Each proposer works in a box ``[lower, upper]^d`` and maximises; the searcher maps every
proposed point to the nearest architecture not yet evaluated and tells the proposer the
value measured there.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Proposer:
    """``ask() -> (token, point)``, ``tell(token, value)`` with larger values better, and
    ``replay(point, value)`` to teach a fresh proposer a point it never asked for (this is
    how a restored searcher rebuilds its optimiser: not every optimiser pickles)."""

    def ask(self) -> tuple[Any, np.ndarray]:
        raise NotImplementedError

    def tell(self, token: Any, value: float | None) -> None:
        raise NotImplementedError

    def replay(self, point: np.ndarray, value: float) -> None:
        raise NotImplementedError


class NevergradProposer(Proposer):
    def __init__(self, name: str, lower: np.ndarray, upper: np.ndarray, budget: int, seed: int | None):
        import nevergrad as ng

        if name not in ng.optimizers.registry:
            raise ValueError(f"unknown nevergrad optimizer {name!r}; e.g. NGOpt, OnePlusOne, DE, CMA, TwoPointsDE")
        # A seeded random start: NGOpt picks a deterministic local method (Cobyla) for small
        # budgets in few dimensions, which from the box centre would walk the same path for
        # every seed.
        random_state = np.random.RandomState(seed)
        parametrization = ng.p.Array(init=random_state.uniform(lower, upper)).set_bounds(lower, upper)
        parametrization.random_state = random_state
        self.optimizer = ng.optimizers.registry[name](parametrization=parametrization, budget=budget)

    def ask(self) -> tuple[Any, np.ndarray]:
        candidate = self.optimizer.ask()
        return candidate, np.asarray(candidate.value, dtype=np.float64)

    def tell(self, token: Any, value: float | None) -> None:
        if value is not None:  # nevergrad minimises; a failed point is simply not told
            self.optimizer.tell(token, -value)

    def replay(self, point: np.ndarray, value: float) -> None:
        self.optimizer.tell(self.optimizer.parametrization.spawn_child(new_value=point), -value)


class HyperoptProposer(Proposer):
    """hyperopt's TPE driven through its ``Trials`` documents (ask, then tell)."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, seed: int | None, n_initial_points: int = 10, gamma: float = 0.25):
        from functools import partial

        from hyperopt import Domain, Trials, hp, tpe

        self.dim = len(lower)
        space = {f"z{i}": hp.uniform(f"z{i}", float(lo), float(hi)) for i, (lo, hi) in enumerate(zip(lower, upper))}
        self.domain = Domain(lambda _: 0.0, space)  # values are told, never computed here
        self.trials = Trials()
        self.algo = partial(tpe.suggest, n_startup_jobs=n_initial_points, gamma=gamma)
        self.rng = np.random.default_rng(seed)

    def ask(self) -> tuple[Any, np.ndarray]:
        ids = self.trials.new_trial_ids(1)
        self.trials.refresh()
        docs = self.algo(ids, self.domain, self.trials, int(self.rng.integers(2**31 - 1)))
        self.trials.insert_trial_docs(docs)
        self.trials.refresh()
        values = docs[0]["misc"]["vals"]
        return docs[0]["tid"], np.array([values[f"z{i}"][0] for i in range(self.dim)])

    def tell(self, token: Any, value: float | None) -> None:
        from hyperopt import JOB_STATE_DONE, JOB_STATE_ERROR, STATUS_FAIL, STATUS_OK

        doc = next(t for t in self.trials._dynamic_trials if t["tid"] == token)
        ok = value is not None
        doc["state"] = JOB_STATE_DONE if ok else JOB_STATE_ERROR
        doc["result"] = {"loss": -value, "status": STATUS_OK} if ok else {"status": STATUS_FAIL}
        self.trials.refresh()

    def replay(self, point: np.ndarray, value: float) -> None:
        from hyperopt.fmin import generate_trial

        tid = self.trials.new_trial_ids(1)[0]
        self.trials.insert_trial_docs([generate_trial(tid, {f"z{i}": float(v) for i, v in enumerate(point)})])
        self.trials.refresh()
        self.tell(tid, value)


class AxProposer(Proposer):
    """Ax's default generation strategy (Sobol, then BoTorch) over the box."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, seed: int | None):
        from ax import Client, RangeParameterConfig

        self.dim = len(lower)
        self.client = Client(random_seed=seed)
        self.client.configure_experiment(
            parameters=[
                RangeParameterConfig(name=f"z{i}", parameter_type="float", bounds=(float(lo), float(hi)))
                for i, (lo, hi) in enumerate(zip(lower, upper))
            ]
        )
        self.client.configure_optimization(objective="score")

    def ask(self) -> tuple[Any, np.ndarray]:
        (index, params), = self.client.get_next_trials(max_trials=1).items()
        return index, np.array([params[f"z{i}"] for i in range(self.dim)])

    def tell(self, token: Any, value: float | None) -> None:
        if value is None:
            self.client.mark_trial_failed(token)
        else:
            self.client.complete_trial(token, raw_data={"score": value})

    def replay(self, point: np.ndarray, value: float) -> None:
        index = self.client.attach_trial(parameters={f"z{i}": float(v) for i, v in enumerate(point)})
        self.client.complete_trial(index, raw_data={"score": value})


def make_proposer(optimizer: str, lower: np.ndarray, upper: np.ndarray, seed: int | None, budget: int) -> Proposer:
    """``nevergrad:<Name>``, ``hyperopt:tpe`` or ``ax``."""
    family, _, name = optimizer.partition(":")
    if family == "nevergrad":
        return NevergradProposer(name or "NGOpt", lower, upper, budget, seed)
    if family == "hyperopt" and name in ("", "tpe"):
        return HyperoptProposer(lower, upper, seed)
    if family == "ax" and not name:
        return AxProposer(lower, upper, seed)
    raise ValueError(f"unknown optimizer {optimizer!r}; allowed: 'gp-ei', 'nevergrad:<Name>', 'hyperopt:tpe', 'ax'")
