"""Bayesian optimisation over a raynas space with Ax's ``Client`` API (ax-platform >= 1.3).

Ray's own ``AxSearch`` targets the retired ``AxClient`` and one objective; this adapter
speaks the new ``ax.Client`` and handles several objectives, outcome constraints and
Pareto fronts.  Ax sees the space's flat Tune domains (converted once by
:meth:`AxSearcher.convert_search_space`); everything NAS-specific stays in
:class:`~searchers.base.ArchSearcher`: a proposal equivalent to an architecture already
tried is never run twice but is settled in Ax at once (with the known result, so the
model still learns that equivalent cells score alike), and when Ax keeps repeating itself
a random unseen architecture is attached to Ax instead.

Ax's default strategy ("fast") one-hot encodes categorical parameters and optimises the
acquisition function in the relaxed continuous space; on NAS cells (all categorical) its
rounded optimum is mostly a cell already evaluated, Ax re-runs the whole optimisation up
to five times, then falls back to Sobol: slow suggestions and little gain.
So the default here is ``method="mixed"``: Sobol, then Ax's ``BO_MIXED`` generator (a GP
with a categorical kernel, the acquisition maximised by discrete local search that skips
evaluated and pending cells).
"""
from __future__ import annotations

import inspect
import math
import os
import tempfile
from typing import Any, Mapping

from ax import ChoiceParameterConfig, Client, RangeParameterConfig
from ax.adapter.registry import Generators
from ax.api.utils.instantiation.from_string import optimization_config_from_string
from ax.exceptions.core import DataRequiredError
from ax.exceptions.generation_strategy import GenerationStrategyRepeatedPoints, MaxParallelismReachedException
from ax.generation_strategy.generation_node import GenerationStep
from ax.generation_strategy.generation_strategy import GenerationStrategy
from ray.tune.search.sample import Categorical, Domain, Float, Integer, LogUniform, Quantized, Uniform

from raynas.arch import Arch
from search_spaces import SearchSpace
from searchers.base import FINISHED, ArchSearcher

Parameter = ChoiceParameterConfig | RangeParameterConfig
_AX_METHODS = ("fast", "quality", "random_search")
_GS_OPTIONS = set(inspect.signature(Client.configure_generation_strategy).parameters) - {
    "self",
    "method",
    "initialization_budget",
    "initialization_random_seed",
}


class AxSearcher(ArchSearcher):
    """Ax (Sobol, then BoTorch) as a Tune ``Searcher`` over one search space.

    Args:
        space: a :class:`~search_spaces.SearchSpace` or its registry name.
        metric, mode: one objective in Tune's convention, or equal-length lists of them.
        seed: Ax's random seed (initial Sobol points and model fitting).
        objectives: ``{"val_acc": "max", "params": "min"}`` for multi-objective search;
            the first entry is the primary ``metric``/``mode`` Tune sees.
        num_initial: quasi-random (Sobol) trials before the model takes over
            (Ax's ``initialization_budget``; 5 when ``None``).
        outcome_constraints: Ax constraint strings such as ``"params <= 1e6"``; in
            multi-objective search a bound on an objective is its reference threshold.
        max_repeats: proposals of already-tried architectures tolerated per ``suggest``
            before a random unseen architecture is attached instead.
        max_resample: see :class:`~searchers.base.ArchSearcher`.
        method: ``"mixed"`` (see the module docstring) or one of Ax's own strategies,
            ``"fast"``, ``"quality"``, ``"random_search"``.
        optimizer_options: BoTorch acquisition-optimiser options of ``"mixed"``; fewer
            ``num_restarts``/``raw_samples`` make each suggestion cheaper.
        client_options: further ``Client.configure_generation_strategy`` options of
            Ax's strategies, e.g. ``initialize_with_center=False``.
    """

    def __init__(
        self,
        space: SearchSpace | str,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        seed: int | None = None,
        objectives: Mapping[str, str] | None = None,
        num_initial: int | None = None,
        outcome_constraints: list[str] | None = None,
        max_repeats: int = 3,
        max_resample: int = 1000,
        method: str = "mixed",
        optimizer_options: Mapping[str, Any] | None = None,
        **client_options: Any,
    ):
        if isinstance(metric, (list, tuple)):
            if objectives is not None:
                raise ValueError("give either objectives= or lists of metric/mode, not both")
            modes = list(mode) if isinstance(mode, (list, tuple)) else [mode] * len(metric)
            if len(modes) != len(metric):
                raise ValueError(f"metric {list(metric)} and mode {modes} must have the same length")
            objectives = dict(zip(metric, modes))
        self.objectives = dict(objectives or {})
        for name, direction in self.objectives.items():
            if direction not in ("max", "min"):
                raise ValueError(f"objective {name!r}: mode must be 'max' or 'min', got {direction!r}")
        if self.objectives:
            metric, mode = next(iter(self.objectives.items()))
        if method not in ("mixed", *_AX_METHODS):
            raise ValueError(f"method must be 'mixed' or one of Ax's {list(_AX_METHODS)}, got {method!r}")
        allowed = _GS_OPTIONS if method in _AX_METHODS else set()
        if set(client_options) - allowed:
            raise ValueError(
                f"unknown options {sorted(set(client_options) - allowed)} for method {method!r}; "
                f"allowed: {sorted(allowed)}"
            )
        if num_initial is not None and num_initial < 1:
            raise ValueError(f"num_initial must be >= 1 (the model needs data), got {num_initial}")
        if max_repeats < 0:
            raise ValueError(f"max_repeats must be >= 0, got {max_repeats}")
        super().__init__(space, metric, mode, seed, max_resample)
        self.parameters = self.convert_search_space(self.space.tune_space())
        self.num_initial = num_initial
        self.outcome_constraints = list(outcome_constraints or [])
        self.max_repeats = max_repeats
        self.method = method
        self.optimizer_options = dict(optimizer_options or {})
        self.client_options = client_options
        self.client: Client | None = None
        self.ax_trials: dict[str, int] = {}  # Tune trial id -> Ax trial index
        self.outcomes: dict[str, dict[str, float]] = {}  # canonical key -> outcome metrics
        if self.objectives:
            self._outcome_metrics()  # fail now, not at the first suggest, on a bad constraint

    # ------------------------------------------------------------------ conversion
    @staticmethod
    def convert_search_space(spec: Mapping[str, Any]) -> list[Parameter]:
        """Ax parameters for flat Tune domains (choice, (q)(log)randint, (log)uniform)."""
        return [_parameter(key, domain) for key, domain in spec.items()]

    # ------------------------------------------------------------------ Tune protocol
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Tune may name any of several objectives (it tracks that one for itself)."""
        if self.objectives and metric in self.objectives:
            metric, mode = None, None
        return super().set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | str | None:
        self._check_objective()
        client = self._client()
        for _ in range(self.max_repeats + 1):
            try:
                trials = client.get_next_trials(max_trials=1)
            except (DataRequiredError, MaxParallelismReachedException):
                return None  # Ax waits for results of its initial trials
            except GenerationStrategyRepeatedPoints:
                break
            if not trials:
                return None
            ((index, params),) = trials.items()
            try:
                arch = self.space.decode(params)
            except ValueError:  # e.g. an nb101 cell with no path to the output
                client.mark_trial_abandoned(index)
                continue
            if self.is_unseen(arch):
                return self._start(trial_id, index, arch)
            self._settle_repeat(index, arch)
        arch = self.random_unseen()
        if arch == FINISHED:
            return FINISHED
        return self._start(trial_id, client.attach_trial(self.space.encode(arch)), arch)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        index = self.ax_trials.pop(trial_id, None)
        arch = self.pending.get(trial_id)
        outcome = None if error else self._outcome(result)
        if index is not None and self.client is not None:
            if outcome is None:
                reason = "trial errored" if error else f"no finite value for one of {self._outcome_metrics()}"
                self.client.mark_trial_failed(index, failed_reason=reason)
            else:
                self.client.complete_trial(index, raw_data=outcome)
        if arch is not None and outcome is not None:
            self.outcomes[arch.key] = outcome
        super().on_trial_complete(trial_id, result, error or outcome is None)

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float | Mapping[str, float],
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:
        """Warm-start Ax too; ``value`` is the metric, or a dict of all outcome metrics."""
        self._check_objective()
        arch = self.space.decode(parameters)
        index = self._client().attach_trial(self.space.encode(arch))
        result = value if isinstance(value, Mapping) else {self._metric: value}
        outcome = None if error or pruned else self._outcome(result)
        if outcome is None:
            self.client.mark_trial_failed(index, failed_reason="evaluated elsewhere without a usable result")
        else:
            self.client.complete_trial(index, raw_data=outcome)
            self.outcomes[arch.key] = outcome
        super().add_evaluated_point(parameters, None if outcome is None else outcome[self._metric], error, pruned)

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[Arch, float] | None:
        """Best observed architecture that meets the outcome constraints, and its metric."""
        if len(self.objectives) > 1:
            raise ValueError(f"{len(self.objectives)} objectives have no single best: use pareto_front()")
        if self.client is None or not self.history:
            return None
        params, values, _, _ = self.client.get_best_parameterization(use_model_predictions=False)
        return self.space.decode(params), _mean(values[self._metric])

    def pareto_front(self) -> list[tuple[Arch, dict[str, float]]]:
        """Observed non-dominated architectures (feasible ones) with their objective values."""
        if len(self.objectives) < 2:
            raise ValueError("pareto_front() needs two or more objectives; use best()")
        if self.client is None or not self.history:
            return []
        front: dict[Arch, dict[str, float]] = {}
        for params, values, _, _ in self.client.get_pareto_frontier(use_model_predictions=False):
            front.setdefault(self.space.decode(params), {m: _mean(values[m]) for m in self.objectives})
        return list(front.items())

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        state = {**super().get_state(), "ax_trials": dict(self.ax_trials), "outcomes": dict(self.outcomes)}
        if self.client is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "ax.json")
                self.client.save_to_json_file(path)
                with open(path) as handle:
                    state["ax"] = handle.read()
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.ax_trials = dict(state["ax_trials"])
        self.outcomes = dict(state["outcomes"])
        self.client = None
        if "ax" in state:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "ax.json")
                with open(path, "w") as handle:
                    handle.write(state["ax"])
                self.client = Client.load_from_json_file(path)
            self.client._random_seed = self.seed  # Ax's JSON snapshot drops the Client's seed

    # ------------------------------------------------------------------ internals
    def _client(self) -> Client:
        """The Ax client, configured once the objectives are known (Tune may set them late)."""
        if self.client is None:
            client = Client(random_seed=self.seed)
            client.configure_experiment(parameters=self.parameters, name=f"raynas-{self.space.name}")
            client.configure_optimization(
                objective=self._objective_string(),
                outcome_constraints=self.outcome_constraints or None,
            )
            if self.method == "mixed":
                client.set_generation_strategy(self._mixed_strategy())
            else:
                client.configure_generation_strategy(
                    method=self.method,
                    initialization_budget=self.num_initial,
                    initialization_random_seed=self.seed,
                    **self.client_options,
                )
            self.client = client
        return self.client

    def _mixed_strategy(self) -> GenerationStrategy:
        """Sobol, then a categorical-kernel GP (Ax's own steps, our choice of generator)."""
        n_init = 5 if self.num_initial is None else self.num_initial
        bo = GenerationStep(
            generator=Generators.BO_MIXED,
            num_trials=-1,
            should_deduplicate=True,
            generator_gen_kwargs={"model_gen_options": {"optimizer_kwargs": self.optimizer_options}},
        )
        sobol = GenerationStep(
            generator=Generators.SOBOL,
            num_trials=n_init,
            min_trials_observed=max(1, n_init // 2),
            should_deduplicate=True,
            use_all_trials_in_exp=True,
            generator_kwargs={"seed": self.seed},
        )
        return GenerationStrategy(name="Sobol+BO_MIXED", nodes=[sobol, bo])

    def _objectives(self) -> dict[str, str]:
        return self.objectives or {self._metric: self._mode}

    def _objective_string(self) -> str:
        """Ax's objective: ``"val_acc, -params"`` (a minus sign minimises)."""
        return ", ".join(m if d == "max" else f"-{m}" for m, d in self._objectives().items())

    def _outcome_metrics(self) -> list[str]:
        """Objectives and constrained metrics: what Ax needs from every result."""
        config = optimization_config_from_string(self._objective_string(), self.outcome_constraints or None)
        return list(dict.fromkeys([*self._objectives(), *sorted(config.metric_names)]))

    def _outcome(self, result: Mapping[str, Any] | None) -> dict[str, float] | None:
        """Ax's raw data for ``result``, or ``None`` if a needed metric is absent or not finite."""
        outcome = {}
        for name in self._outcome_metrics():
            value = (result or {}).get(name)
            if value is None or not math.isfinite(float(value)):
                return None
            outcome[name] = float(value)
        return outcome

    def _start(self, trial_id: str, index: int, arch: Arch) -> dict:
        self._mark_seen(arch)
        self.pending[trial_id] = arch
        self.ax_trials[trial_id] = index
        return self.space.encode(arch)

    def _settle_repeat(self, index: int, arch: Arch) -> None:
        """Close an Ax trial whose architecture was already proposed, without running it."""
        known = self.outcomes.get(arch.key)
        if known is not None:
            self.client.complete_trial(index, raw_data=known)
        else:  # still running, or failed: abandoned arms are not proposed again
            self.client.mark_trial_abandoned(index)


def _mean(value: float | tuple[float, float]) -> float:
    """Ax reports an outcome as ``(mean, sem)``."""
    return float(value[0] if isinstance(value, tuple) else value)


def _parameter(key: str, domain: Any) -> Parameter:
    """One Tune domain as an Ax parameter; Tune's exclusive integer bounds become inclusive."""
    sampler = domain.get_sampler() if isinstance(domain, Domain) else None
    q = None
    if isinstance(sampler, Quantized):
        q, sampler = sampler.q, sampler.sampler
    if isinstance(domain, Categorical) and isinstance(sampler, Uniform):
        values = list(domain.categories)
        for kind, types in (("bool", bool), ("int", int), ("float", (int, float)), ("str", str)):
            if all(isinstance(v, types) and (kind == "bool" or not isinstance(v, bool)) for v in values):
                values = [float(v) for v in values] if kind == "float" else values
                return ChoiceParameterConfig(name=key, values=values, parameter_type=kind, is_ordered=False)
        raise ValueError(f"{key}: tune.choice values must all be str, int, float or bool, got {values!r}")
    scaling = "log" if isinstance(sampler, LogUniform) else "linear"
    if isinstance(domain, Integer) and isinstance(sampler, (Uniform, LogUniform)):
        upper = domain.upper if q not in (None, 1) else domain.upper - 1  # Tune: q > 1 includes upper
        return RangeParameterConfig(
            name=key, bounds=(domain.lower, upper), parameter_type="int", step_size=q, scaling=scaling
        )
    if isinstance(domain, Float) and isinstance(sampler, (Uniform, LogUniform)):
        return RangeParameterConfig(
            name=key, bounds=(domain.lower, domain.upper), parameter_type="float", step_size=q, scaling=scaling
        )
    raise ValueError(
        f"{key}: AxSearcher cannot search {domain!r} (sampler {type(sampler).__name__}); allowed: "
        "tune.choice, tune.randint/qrandint/lograndint, tune.uniform/quniform/loguniform"
    )
