"""A search space from the user's own model function and a dict of Ray Tune domains.

::

    def build_cnn(depth, width, kernel_1, kernel_2, kernel_3, num_classes, in_shape):
        ...  # returns a torch.nn.Module

    space = FunctionSpace(
        build_cnn,
        {"depth": tune.choice([1, 2, 3]), "width": tune.choice([8, 16, 32]),
         "kernel_1": tune.choice([3, 5]), "kernel_2": tune.choice([3, 5]), "kernel_3": tune.choice([3, 5])},
        name="mycnn",
        conditions={"kernel_2": lambda c: c["depth"] >= 2, "kernel_3": lambda c: c["depth"] >= 3},
    )

An architecture is the canonical config: one value per parameter, where a parameter whose
condition is false (``kernel_3`` when ``depth`` is 2) is *inactive*: it is left out of the
canonical key and set to its first value in the canonical form, so configs that differ only in
inactive parameters are one architecture and are never evaluated twice.

Domains: ``tune.choice`` (any values; numbers are ordered), ``tune.randint`` /
``tune.qrandint`` / ``tune.lograndint`` (finite integer ranges), ``tune.uniform`` /
``tune.loguniform`` / ``tune.quniform`` (continuous: no ``enumerate``).  Values that are not
domains are constants passed to the function as they are.  ``build(arch, num_classes,
in_shape, **options)`` calls the function with every parameter (inactive ones at their first
value) and the constants as keyword arguments, plus ``num_classes`` / ``in_shape`` /
``in_channels`` when it takes them, plus any build options.

The string form is ``depth=2|width=16|kernel_1=3|kernel_2=5|kernel_3=3`` (values as JSON).
"""
from __future__ import annotations

import copy
import inspect
import itertools
import json
import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator, Mapping

import networkx as nx
import numpy as np

from raynas.arch import Arch
from search_spaces.base import RngLike, SearchSpace, as_rng
from search_spaces.registry import register_instance

if TYPE_CHECKING:  # Tune's domains and torch are imported where used: defining a space needs neither
    from ray.tune.search.sample import Domain
    from torch import nn

Condition = Callable[[Mapping[str, Any]], bool]
#: keyword arguments ``build`` passes when the function takes them
NETWORK_ARGS = ("num_classes", "in_shape", "in_channels")
#: a continuous parameter's neighbours lie this share of its range away
FLOAT_STEP = 0.1


@dataclass(frozen=True)
class Param:
    """One searched parameter: its finite ``values`` (in order), or a continuous range."""

    name: str
    domain: Domain
    values: tuple[Any, ...] | None  # None: continuous
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    q: float | None = None

    @property
    def ordered(self) -> bool:
        """Numeric parameters have neighbours: the adjacent values."""
        return self.values is None or all(_is_number(v) for v in self.values)

    @property
    def default(self) -> Any:
        """The value an inactive parameter takes in the canonical form."""
        return self.values[0] if self.values is not None else self.low

    def check(self, value: Any) -> Any:
        if self.values is not None:
            if not any(_same(value, v) for v in self.values):
                raise ValueError(f"{self.name}: {value!r} is not allowed; allowed values are {list(self.values)}")
            return next(v for v in self.values if _same(value, v))
        if not _is_number(value) or not self.low <= value <= self.high:
            raise ValueError(f"{self.name}: {value!r} is not allowed; allowed values are numbers in [{self.low}, {self.high}]")
        return float(value)

    def sample(self, rng: np.random.Generator) -> Any:
        if self.values is not None:
            return self.values[int(rng.integers(len(self.values)))]
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high))) if self.log else rng.uniform(self.low, self.high)
        return self._quantize(float(value))

    def moves(self, value: Any) -> list[Any]:
        """The values one step from ``value``: adjacent ones for ordered parameters, every other
        value for unordered ones."""
        if self.values is None:
            if self.log:
                factor = (self.high / self.low) ** FLOAT_STEP
                steps = [value / factor, value * factor]
            else:
                steps = [value - FLOAT_STEP * (self.high - self.low), value + FLOAT_STEP * (self.high - self.low)]
            return [v for v in (self._quantize(min(max(s, self.low), self.high)) for s in steps) if v != value]
        if not self.ordered:
            return [v for v in self.values if not _same(v, value)]
        ranked = sorted(self.values)
        i = next(k for k, v in enumerate(ranked) if _same(v, value))
        return [ranked[k] for k in (i - 1, i + 1) if 0 <= k < len(ranked)]

    def _quantize(self, value: float) -> float:
        if self.q:
            value = min(max(round(value / self.q) * self.q, self.low), self.high)
        return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal as a Tune config value (``2 == 2.0``, but ``True`` is not ``1``)."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def param(name: str, domain: Domain) -> Param:
    """The :class:`Param` of a Tune domain; a ValueError naming what is not supported."""
    from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Quantized, Uniform

    sampler = domain.get_sampler()
    q = sampler.q if isinstance(sampler, Quantized) else None
    if isinstance(domain, Categorical):
        if not domain.categories:
            raise ValueError(f"parameter {name!r}: tune.choice needs at least one value")
        return Param(name, domain, tuple(domain.categories))
    if isinstance(domain, Integer):
        step = int(q or 1)
        upper = domain.upper + 1 if q else domain.upper  # randint excludes its upper bound, qrandint includes it
        values = tuple(v for v in range(int(domain.lower), int(upper)) if v % step == 0)
        if not values:
            raise ValueError(f"parameter {name!r}: the integer domain {domain.lower}..{domain.upper} holds no value")
        return Param(name, domain, values)
    base = sampler.get_sampler() if isinstance(sampler, Quantized) else sampler
    if isinstance(domain, Float) and isinstance(base, (Uniform, LogUniform)):
        return Param(name, domain, None, float(domain.lower), float(domain.upper), isinstance(base, LogUniform), q)
    raise ValueError(
        f"parameter {name!r}: {type(domain).__name__} domains sampled by {type(base).__name__} are not supported; use tune.choice, tune.randint, "
        "tune.qrandint, tune.lograndint, tune.uniform, tune.loguniform or tune.quniform"
    )


class FunctionSpace(SearchSpace):
    """The architectures of ``build_fn``: one per canonical assignment of ``params``.

    Args:
        build_fn: ``build_fn(**values) -> nn.Module``; it may also take ``num_classes``,
            ``in_shape`` and ``in_channels``, and build options.
        params: parameter name -> Tune domain (searched) or a plain value (a constant).
        name: the space's name (the ``Arch.space`` tag, shown in results).
        conditions: parameter name -> ``rule(config) -> bool``; the parameter is used only
            where its rule holds.
    """

    def __init__(
        self,
        build_fn: Callable[..., nn.Module],
        params: Mapping[str, Any],
        name: str,
        conditions: Mapping[str, Condition] | None = None,
        register: bool = True,
    ):
        if not callable(build_fn):
            raise ValueError(f"build_fn must be a function returning an nn.Module, got {type(build_fn).__name__}")
        if not isinstance(name, str) or not name or any(c in name for c in " :|/"):
            raise ValueError(f"name must be a non-empty word (no spaces, ':', '|' or '/'), got {name!r}")
        self.name = name
        self.build_fn = build_fn
        from ray.tune.search.sample import Domain

        self.params = [param(k, v) for k, v in params.items() if isinstance(v, Domain)]
        self.constants = {k: v for k, v in params.items() if not isinstance(v, Domain)}
        if not self.params:
            raise ValueError(f"space {name!r} has no Tune domain among its params {sorted(params)}: nothing to search")
        self.conditions = dict(conditions or {})
        unknown = sorted(set(self.conditions) - {p.name for p in self.params})
        if unknown:
            raise ValueError(f"conditions name {unknown}, which are not searched parameters {[p.name for p in self.params]}")
        self._check_signature()
        if register:
            register_instance(self)

    def _check_signature(self) -> None:
        """Every parameter and constant must be an argument of ``build_fn`` (fail now, not in a trial)."""
        parameters = inspect.signature(self.build_fn).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        missing = [n for n in [*(p.name for p in self.params), *self.constants] if n not in parameters]
        if missing:
            raise ValueError(f"{getattr(self.build_fn, '__name__', self.build_fn)} takes no argument {missing}; it takes {list(parameters)}")

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> tuple[Any, ...]:
        values: dict[str, Any] = {}
        for part in text.split("|"):
            key, _, raw = part.partition("=")
            try:
                values[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                raise ValueError(
                    f"{self.name} arch string {text!r} is malformed at {part!r}; expected e.g. {self._format(self._defaults())}"
                ) from None
        return self._spec_from_config(values)

    def _format(self, spec: tuple[Any, ...]) -> str:
        return "|".join(f"{p.name}={json.dumps(v)}" for p, v in zip(self.params, spec))

    def _validate(self, spec: Hashable) -> None:
        if not isinstance(spec, tuple) or len(spec) != len(self.params):
            raise ValueError(f"{self.name} spec must be a tuple of {len(self.params)} values, got {spec!r}")
        for p, value in zip(self.params, spec):
            p.check(value)

    def _key(self, spec: tuple[Any, ...]) -> str:
        active = self._active(spec)
        return "|".join(f"{p.name}={json.dumps(v)}" for p, v in zip(self.params, spec) if p.name in active)

    def _canonical_spec(self, spec: tuple[Any, ...]) -> tuple[Any, ...]:
        active = self._active(spec)
        return tuple(v if p.name in active else p.default for p, v in zip(self.params, spec))

    def _spec_from_config(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        defaults = dict(zip((p.name for p in self.params), self._defaults()))
        filled = {**defaults, **{k: v for k, v in config.items() if k in defaults}}
        spec = tuple(p.check(filled[p.name]) for p in self.params)
        missing = [p.name for p in self.params if p.name not in config and p.name in self._active(spec)]
        if missing:
            raise ValueError(f"{self.name} config is missing keys {missing}; expected keys {self.config_keys()}")
        return spec

    def _config_from_spec(self, spec: tuple[Any, ...]) -> dict[str, Any]:
        return {p.name: v for p, v in zip(self.params, spec)}

    def _defaults(self) -> tuple[Any, ...]:
        return tuple(p.default for p in self.params)

    def _active(self, spec: tuple[Any, ...]) -> set[str]:
        """Parameters whose condition holds for ``spec``."""
        config = {**self.constants, **self._config_from_spec(spec)}
        return {p.name for p in self.params if p.name not in self.conditions or self.conditions[p.name](config)}

    def decode(self, config: Mapping[str, Any]) -> Arch:
        """Arch from a flat config; an inactive parameter may be missing."""
        return self.make(self._spec_from_config(config))

    # ------------------------------------------------------------------ Tune side
    def tune_space(self) -> dict[str, Any]:
        return {p.name: copy.deepcopy(p.domain) for p in self.params}

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        rng = as_rng(rng)
        return self.make(tuple(p.sample(rng) for p in self.params))

    def neighbors(self, arch: Arch) -> list[Arch]:
        """One active parameter moved to an adjacent value (numbers) or any other value."""
        spec = self._own(arch).spec
        active = self._active(spec)
        edits = (
            spec[:i] + (value,) + spec[i + 1 :]
            for i, p in enumerate(self.params)
            if p.name in active
            for value in p.moves(spec[i])
        )
        return self._moves(arch, edits)

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture (one per canonical key) of a space without continuous parameters."""
        if any(p.values is None for p in self.params):
            raise TypeError(f"space {self.name!r} has continuous parameters and is too large to enumerate")
        seen: set[str] = set()
        for spec in itertools.product(*(p.values for p in self.params)):
            arch = self.make(self._canonical_spec(spec))
            if arch.key not in seen:
                seen.add(arch.key)
                yield arch

    # ------------------------------------------------------------------ networks
    def build(
        self, arch: Arch, num_classes: int = 10, in_shape: tuple[int, int, int] = (3, 32, 32), **build: Any
    ) -> nn.Module:
        """``build_fn`` called with the architecture's values, the constants and ``build``."""
        self._check_build(self.name, {}, (), num_classes, in_shape)
        network = {"num_classes": num_classes, "in_shape": tuple(in_shape), "in_channels": in_shape[0]}
        parameters = inspect.signature(self.build_fn).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        unknown = sorted(k for k in build if k not in parameters and not takes_all)
        if unknown:
            raise ValueError(f"unknown {self.name} build options {unknown}; {self.build_fn.__name__} takes {list(parameters)}")
        kwargs = {**self.constants, **self._config_from_spec(self._canonical_spec(self._own(arch).spec)), **build}
        kwargs |= {k: v for k, v in network.items() if k in parameters and k not in kwargs}
        model = self.build_fn(**kwargs)
        from torch import nn

        if not isinstance(model, nn.Module):
            raise ValueError(f"{self.build_fn.__name__}(...) must return a torch.nn.Module, got {type(model).__name__}")
        return model

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """The active parameters as a chain ``input -> name=value -> ... -> output``."""
        spec = self._own(arch).spec
        active = self._active(spec)
        labels = ["input", *(f"{p.name}={v}" for p, v in zip(self.params, spec) if p.name in active), "output"]
        graph = nx.DiGraph()
        graph.add_nodes_from((i, {"op": label}) for i, label in enumerate(labels))
        graph.add_edges_from((i, i + 1) for i in range(len(labels) - 1))
        return graph

    def __repr__(self) -> str:
        return f"FunctionSpace({getattr(self.build_fn, '__name__', 'build_fn')}, name={self.name!r})"


def function_space(
    params: Mapping[str, Any], name: str | None = None, conditions: Mapping[str, Condition] | None = None
) -> Callable[[Callable[..., nn.Module]], FunctionSpace]:
    """Decorator: ``@function_space({...})`` over a model function makes it a :class:`FunctionSpace`
    (named after the function unless ``name`` is given)."""

    def deco(build_fn: Callable[..., nn.Module]) -> FunctionSpace:
        return FunctionSpace(build_fn, params, name or build_fn.__name__, conditions)

    return deco
