"""Ask/tell adapters that let black-box optimisers propose points in an embedding space.

Each proposer works in a box ``[lower, upper]^d`` and maximises; the searcher maps every
proposed point to the nearest architecture not yet evaluated and tells the proposer the
value measured there.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Proposer:
    """``ask() -> (token, point)``, ``tell(token, value)`` with larger values better."""

    def ask(self) -> tuple[Any, np.ndarray]:
        raise NotImplementedError

    def tell(self, token: Any, value: float | None) -> None:
        raise NotImplementedError


class NevergradProposer(Proposer):
    def __init__(self, name: str, lower: np.ndarray, upper: np.ndarray, budget: int, seed: int | None):
        import nevergrad as ng

        if name not in ng.optimizers.registry:
            raise ValueError(f"unknown nevergrad optimizer {name!r}; e.g. NGOpt, OnePlusOne, DE, CMA, TwoPointsDE")
        parametrization = ng.p.Array(init=(lower + upper) / 2).set_bounds(lower, upper)
        parametrization.random_state = np.random.RandomState(seed)
        self.optimizer = ng.optimizers.registry[name](parametrization=parametrization, budget=budget)

    def ask(self) -> tuple[Any, np.ndarray]:
        candidate = self.optimizer.ask()
        return candidate, np.asarray(candidate.value, dtype=np.float64)

    def tell(self, token: Any, value: float | None) -> None:
        if value is not None:  # nevergrad minimises; a failed point is simply not told
            self.optimizer.tell(token, -value)


class HyperoptProposer(Proposer):
    """TPE through Tune's HyperOptSearch, which already speaks suggest/complete."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, seed: int | None, n_initial_points: int = 10):
        from ray import tune
        from ray.tune.search.hyperopt import HyperOptSearch

        space = {f"z{i}": tune.uniform(float(lo), float(hi)) for i, (lo, hi) in enumerate(zip(lower, upper))}
        self.dim = len(lower)
        self.search = HyperOptSearch(
            space=space, metric="score", mode="max", random_state_seed=seed, n_initial_points=n_initial_points
        )
        self.count = 0

    def ask(self) -> tuple[Any, np.ndarray]:
        self.count += 1
        token = f"p{self.count}"
        config = self.search.suggest(token)
        return token, np.array([config[f"z{i}"] for i in range(self.dim)])

    def tell(self, token: Any, value: float | None) -> None:
        if value is None:
            self.search.on_trial_complete(token, error=True)
        else:
            self.search.on_trial_complete(token, {"score": value})


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
