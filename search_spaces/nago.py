"""NAGO: a space of network *generators* (Ru et al. 2020), searched by a few continuous knobs.

Three random-graph models, one per level of a hierarchy (see :mod:`search_spaces.nago_net`):

========  =====================  ==============================================
level     model                  searched hyper-parameters (Tune keys)
========  =====================  ==============================================
top       Watts-Strogatz, cells  ``top_nodes`` 3-10, ``top_k`` 2-5, ``top_p`` 0.1-1
mid       Erdos-Renyi, nodes     ``mid_nodes`` 3-10, ``mid_p`` 0.2-1
bottom    Watts-Strogatz, ops    ``bot_nodes`` 3-10, ``bot_k`` 2-5, ``bot_p`` 0.1-1
========  =====================  ==============================================

Stage ratio (top-level nodes per stage, default ``1:1:1``) and channel ratio (width per
stage, default ``1:2:4``) are options of the space; with ``search_ratios=True`` they become
Tune keys ``stage_ratio`` / ``channel_ratio`` over :data:`STAGE_RATIOS` / :data:`CHANNEL_RATIOS`.

An :class:`~raynas.arch.Arch` of this space is one generator setting *plus the seed* that
draws its three graphs, so it names one network::

    top=ws(n=6,k=4,p=0.75)|mid=er(n=5,p=0.5)|bot=ws(n=4,k=2,p=0.3)|stages=1:1:1|channels=1:2:4|seed=0

The seed is the space option ``seed`` (default 0): ``decode`` and ``sample`` use it, so a
searcher's config means the same network in every trial.  A config may carry
``graph_seed`` (and the ratio keys) to override the space's value; ``encode`` writes those
keys only when they differ from the space's defaults or are searched, so Tune and Ax see
exactly the keys of ``tune_space()``.  ``p`` values from a config are rounded to 4
decimals.  The canonical key holds what changes the drawn graphs: ``k`` as networkx uses
it (clamped to ``n - 1``, odd ``k`` acting as ``k - 1``) and no ``p`` for a Watts-Strogatz
level whose ring is already complete (``k >= n - 1``: nothing can be rewired).

One generator setting is a distribution over networks: the ``sampled`` trainable
(:class:`raynas.trainables.sampled.SampledTrainable`) trains ``graph_samples`` draws (seeds
``graph_seed``, ``graph_seed + 1``, ...) of one config and reports the mean and the spread.
"""
from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING, Any, Collection, Mapping, NamedTuple

import networkx as nx

from raynas.arch import Arch
from search_spaces.base import RngLike, SearchSpace, as_rng, check_choice
from search_spaces.nago_graphs import (
    LEVELS,
    OPS,
    effective_k,
    network_params,
    sample_dag,
    split_stages,
    width_for_budget,
)  # fmt: skip
from search_spaces.registry import register_space

if TYPE_CHECKING:
    from torch import nn

NODES = (3, 10)
#: the special cases the paper names, as ``nodes`` options: RandWire's three stages of one
#: 32-node random graph each, and a DARTS-like stack of 20 single-node cells (bottom level searched)
RANDWIRE: dict[str, int] = {"top": 3, "mid": 1, "bot": 32}
DARTS_LIKE: dict[str, int] = {"top": 20, "mid": 1}
KS = (2, 5)
P_RANGES = {"top": (0.1, 1.0), "mid": (0.2, 1.0), "bot": (0.1, 1.0)}
MODELS = {"top": "ws", "mid": "er", "bot": "ws"}
STAGE_RATIOS: tuple[str, ...] = ("1:1:1", "1:2:1", "2:1:1", "1:1:2", "2:2:1", "1:2:2")
CHANNEL_RATIOS: tuple[str, ...] = ("1:2:4", "1:1:1", "1:2:2", "1:1:2", "1:2:3", "2:3:4")
P_DECIMALS = 4
DEFAULT_BUDGET = 100_000
#: base width of a search with the network's size among its objectives and no ``build`` given: a
#: budget would size every network alike (a front of one point); at a fixed width the size follows
#: the generator (about 75k to 750k parameters, 3 to 10 nodes a level, digits or CIFAR alike)
SIZE_OBJECTIVE_WIDTH = 4
#: metrics that measure a network's size (``default_build`` fixes the width when one is an objective)
SIZE_METRICS = ("params", "flops")
#: the searched hyper-parameters, in spec order
HYPER: tuple[str, ...] = ("top_nodes", "top_k", "top_p", "mid_nodes", "mid_p", "bot_nodes", "bot_k", "bot_p")

_LEVEL = r"(?P<{l}>ws|er)\(\s*n\s*=\s*(?P<{l}_n>\d+)\s*(?:,\s*k\s*=\s*(?P<{l}_k>\d+)\s*)?,\s*p\s*=\s*(?P<{l}_p>[0-9.eE+-]+)\s*\)"
_RATIO = r"\d+(?::\d+)*"
_ARCH = re.compile(
    r"\s*" + r"\s*\|\s*".join(f"{l}\\s*=\\s*{_LEVEL.format(l=l)}" for l in LEVELS)
    + rf"\s*\|\s*stages\s*=\s*(?P<stages>{_RATIO})\s*\|\s*channels\s*=\s*(?P<channels>{_RATIO})"
    + r"\s*\|\s*seed\s*=\s*(?P<seed>\d+)\s*"
)
_TEMPLATE = "top=ws(n=6,k=4,p=0.75)|mid=er(n=5,p=0.5)|bot=ws(n=4,k=2,p=0.3)|stages=1:1:1|channels=1:2:4|seed=0"


class Spec(NamedTuple):
    """One generator setting and the seed of its three graphs (fields as the Tune keys)."""

    top_nodes: int
    top_k: int
    top_p: float
    mid_nodes: int
    mid_p: float
    bot_nodes: int
    bot_k: int
    bot_p: float
    stage_ratio: str
    channel_ratio: str
    seed: int


def ratio(text: str) -> tuple[int, ...]:
    """``"1:2:4"`` -> ``(1, 2, 4)``."""
    return tuple(int(v) for v in text.split(":"))


def level_args(spec: Spec, level: str) -> tuple[str, int, int, float]:
    """``(model, n, k, p)`` of ``level`` (``k`` is 0 for Erdos-Renyi)."""
    values = spec._asdict()
    return MODELS[level], values[f"{level}_nodes"], values.get(f"{level}_k", 0), values[f"{level}_p"]


def _check_int(field: str, value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    ) or not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{field}: {value!r} is not allowed; allowed values are the integers {bounds[0]}..{bounds[1]}")
    return int(value)


def _check_float(field: str, value: Any, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{field}: {value!r} is not allowed; allowed values are numbers in [{bounds[0]}, {bounds[1]}]")
    return float(value)


def node_ranges(nodes: Mapping[str, int | tuple[int, int]], stages: int) -> dict[str, tuple[int, int]]:
    """Inclusive node-count range per level from the ``nodes`` option (checked: known levels,
    1..1000 nodes, at least one top-level node per stage)."""
    unknown = set(nodes) - set(LEVELS)
    if unknown:
        raise ValueError(f"nodes: unknown levels {sorted(unknown)}; the levels are {list(LEVELS)}")
    out: dict[str, tuple[int, int]] = {}
    for level in LEVELS:
        value = nodes.get(level, NODES)
        low, high = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
        low = _check_int(f"nodes[{level!r}] low", low, (stages if level == "top" else 1, 1000))
        out[level] = (low, _check_int(f"nodes[{level!r}] high", high, (low, 1000)))
    return out


@register_space("nago")
class NagoSpace(SearchSpace):
    """Hierarchical random-graph generators (NAGO's HNAG).

    Args:
        stage_ratio, channel_ratio: the fixed ratios (one of :data:`STAGE_RATIOS` /
            :data:`CHANNEL_RATIOS`) used when they are not searched.
        search_ratios: add ``stage_ratio`` and ``channel_ratio`` to the Tune keys.
        seed: graph seed of the architectures ``decode`` and ``sample`` make.
        max_tries: draws per level before a disconnected model raises ``ValueError``.
        nodes: node counts per level (``top``, ``mid``, ``bot``), each an int (fixed) or an
            inclusive ``(low, high)`` range; levels left out keep :data:`NODES`.  E.g.
            :data:`RANDWIRE` and :data:`DARTS_LIKE`, the paper's special cases.
    """

    def __init__(
        self,
        stage_ratio: str = "1:1:1",
        channel_ratio: str = "1:2:4",
        search_ratios: bool = False,
        seed: int = 0,
        max_tries: int = 100,
        nodes: Mapping[str, int | tuple[int, int]] | None = None,
    ):
        self.stage_ratio = check_choice("stage_ratio", stage_ratio, STAGE_RATIOS)
        self.channel_ratio = check_choice("channel_ratio", channel_ratio, CHANNEL_RATIOS)
        self.search_ratios = bool(search_ratios)
        self.seed = _check_int("seed", seed, (0, 2**32 - 1))
        self.max_tries = _check_int("max_tries", max_tries, (1, 10**6))
        self.nodes = node_ranges(nodes or {}, len(ratio(self.stage_ratio)))

    # ------------------------------------------------------------------ spec hooks
    def _parse_spec(self, text: str) -> Spec:
        match = _ARCH.fullmatch(text)
        if not match:
            raise ValueError(f"NAGO arch string {text!r} is malformed; expected e.g. {_TEMPLATE}")
        values: dict[str, Any] = {}
        for level in LEVELS:
            if match.group(level) != MODELS[level] or (match.group(f"{level}_k") is None) != (MODELS[level] == "er"):
                model = "ws(n=..,k=..,p=..)" if MODELS[level] == "ws" else "er(n=..,p=..)"
                raise ValueError(f"{level} level must be {model}, got {match.group(level)}(...) in {text!r}")
            values[f"{level}_nodes"] = int(match.group(f"{level}_n"))
            if MODELS[level] == "ws":
                values[f"{level}_k"] = int(match.group(f"{level}_k"))
            try:
                values[f"{level}_p"] = float(match.group(f"{level}_p"))
            except ValueError:
                raise ValueError(f"{level}_p: {match.group(f'{level}_p')!r} is not a number") from None
        return Spec(
            **values, stage_ratio=match.group("stages"), channel_ratio=match.group("channels"),
            seed=int(match.group("seed")),
        )  # fmt: skip

    def _format(self, spec: Spec, key: bool = False) -> str:
        levels = []
        for level in LEVELS:
            model, n, k, p = level_args(spec, level)
            if model == "er":
                levels.append(f"{level}=er(n={n},p={p!r})")
            elif key:
                k = effective_k(n, k)
                levels.append(f"{level}=ws(n={n},k={k}" + (")" if k >= n - 1 else f",p={p!r})"))
            else:
                levels.append(f"{level}=ws(n={n},k={k},p={p!r})")
        return "|".join([*levels, f"stages={spec.stage_ratio}", f"channels={spec.channel_ratio}", f"seed={spec.seed}"])

    def _validate(self, spec: Spec) -> None:
        if not isinstance(spec, Spec):
            raise ValueError(f"NAGO spec must be a search_spaces.nago.Spec, got {spec!r}")
        for level in LEVELS:
            _check_int(f"{level}_nodes", getattr(spec, f"{level}_nodes"), self.nodes[level])
            if MODELS[level] == "ws":
                _check_int(f"{level}_k", getattr(spec, f"{level}_k"), KS)
            _check_float(f"{level}_p", getattr(spec, f"{level}_p"), P_RANGES[level])
        check_choice("stage_ratio", spec.stage_ratio, STAGE_RATIOS)
        check_choice("channel_ratio", spec.channel_ratio, CHANNEL_RATIOS)
        _check_int("graph_seed", spec.seed, (0, 2**32 - 1))

    def _key(self, spec: Spec) -> str:
        return self._format(spec, key=True)

    def _spec_from_config(self, config: Mapping[str, Any]) -> Spec:
        values: dict[str, Any] = {}
        for name in HYPER:
            level, field = name.split("_")
            if field == "p":
                values[name] = round(_check_float(name, config[name], P_RANGES[level]), P_DECIMALS)
            else:
                values[name] = _check_int(name, config[name], self.nodes[level] if field == "nodes" else KS)
        return Spec(
            **values,
            stage_ratio=check_choice("stage_ratio", config.get("stage_ratio", self.stage_ratio), STAGE_RATIOS),
            channel_ratio=check_choice("channel_ratio", config.get("channel_ratio", self.channel_ratio), CHANNEL_RATIOS),
            seed=_check_int("graph_seed", config.get("graph_seed", self.seed), (0, 2**32 - 1)),
        )

    def _config_from_spec(self, spec: Spec) -> dict[str, Any]:
        config: dict[str, Any] = {name: getattr(spec, name) for name in HYPER}
        for key, value, default in (
            ("stage_ratio", spec.stage_ratio, self.stage_ratio),
            ("channel_ratio", spec.channel_ratio, self.channel_ratio),
        ):
            if self.search_ratios or value != default:
                config[key] = value
        if spec.seed != self.seed:
            config["graph_seed"] = spec.seed
        return config

    # ------------------------------------------------------------------ Tune side
    def tune_space(self) -> dict[str, Any]:
        """``tune.randint`` for node counts and ``k`` (upper bound exclusive, as Tune's),
        ``tune.uniform`` for ``p``; ``tune.choice`` for the ratios when they are searched."""
        from ray import tune

        domains: dict[str, Any] = {}
        for name in HYPER:
            level, field = name.split("_")
            if field == "p":
                domains[name] = tune.uniform(*P_RANGES[level])
            else:
                low, high = self.nodes[level] if field == "nodes" else KS
                domains[name] = tune.randint(low, high + 1)
        if self.search_ratios:
            domains["stage_ratio"] = tune.choice(list(STAGE_RATIOS))
            domains["channel_ratio"] = tune.choice(list(CHANNEL_RATIOS))
        return domains

    # ------------------------------------------------------------------ search moves
    def sample(self, rng: RngLike = None) -> Arch:
        """Every hyper-parameter uniform over its range (``p`` rounded to 4 decimals); the
        ratios uniform over their options when searched; the space's graph seed."""
        rng = as_rng(rng)
        values: dict[str, Any] = {}
        for name in HYPER:
            level, field = name.split("_")
            if field == "p":
                values[name] = round(float(rng.uniform(*P_RANGES[level])), P_DECIMALS)
            else:
                low, high = self.nodes[level] if field == "nodes" else KS
                values[name] = int(rng.integers(low, high + 1))
        stage, channel = self.stage_ratio, self.channel_ratio
        if self.search_ratios:
            stage = STAGE_RATIOS[int(rng.integers(len(STAGE_RATIOS)))]
            channel = CHANNEL_RATIOS[int(rng.integers(len(CHANNEL_RATIOS)))]
        return self.make(Spec(**values, stage_ratio=stage, channel_ratio=channel, seed=self.seed))

    def neighbors(self, arch: Arch) -> list[Arch]:
        """One hyper-parameter moved: an integer by +-1, a ``p`` by +-0.1 (kept in range);
        or, when searched, a ratio changed to another option."""
        spec = self._own(arch).spec
        specs: list[Spec] = []
        for name in HYPER:
            level, field = name.split("_")
            value = getattr(spec, name)
            if field == "p":
                low, high = P_RANGES[level]
                moves = {round(min(max(value + d, low), high), P_DECIMALS) for d in (-0.1, 0.1)}
            else:
                low, high = self.nodes[level] if field == "nodes" else KS
                moves = {v for v in (value - 1, value + 1) if low <= v <= high}
            specs += [spec._replace(**{name: v}) for v in sorted(moves) if v != value]
        if self.search_ratios:
            specs += [spec._replace(stage_ratio=r) for r in STAGE_RATIOS if r != spec.stage_ratio]
            specs += [spec._replace(channel_ratio=r) for r in CHANNEL_RATIOS if r != spec.channel_ratio]
        return self._moves(arch, specs)

    def with_seed(self, arch: Arch, seed: int) -> Arch:
        """``arch``'s generator setting with another graph seed (another draw of the same generator)."""
        return self.make(self._own(arch).spec._replace(seed=seed))

    # ------------------------------------------------------------------ graphs and networks
    def graphs(self, arch: Arch) -> dict[str, tuple[tuple[int, ...], ...]]:
        """The three DAGs ``arch`` draws (``level -> preds per node``), reproducible per seed."""
        spec = self._own(arch).spec
        return {
            level: sample_dag(*level_args(spec, level), seed=spec.seed, level=i, max_tries=self.max_tries)
            for i, level in enumerate(LEVELS)
        }

    def default_build(self, objectives: Collection[str]) -> dict[str, Any]:
        """``build`` options a search with these ``objectives`` uses when it gives none: a fixed
        :data:`SIZE_OBJECTIVE_WIDTH` when a size metric is one, so that the front spreads in size."""
        return {"width": SIZE_OBJECTIVE_WIDTH} if set(objectives) & set(SIZE_METRICS) else {}

    def build(
        self,
        arch: Arch,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        width: int | None = None,
        param_budget: int | None = None,
        op: str = "conv3x3",
        **build: Any,
    ) -> nn.Module:
        """The network ``arch`` generates, for any input size and class count.

        Args:
            width: channels of a width-ratio-1 stage; when not given, the largest width
                whose network has at most ``param_budget`` parameters.
            param_budget: parameter budget that picks the width (default 100,000); give
                ``width`` or ``param_budget``, not both.  A fixed ``width`` lets the
                parameter count vary with the generator (for accuracy-vs-size search).
            op: bottom-level operation, one of ``conv3x3`` (ReLU-conv3x3-BN),
                ``conv5x5``, ``sep_conv3x3``.
        """
        self._check_build("NAGO", build, ("width", "param_budget", "op"), num_classes, in_shape)
        if width is not None and param_budget is not None:
            raise ValueError("give width or param_budget, not both (the budget picks the width)")
        check_choice("op", op, OPS)
        spec = self._own(arch).spec
        dags = self.graphs(arch)
        channel_ratio = ratio(spec.channel_ratio)
        stages = split_stages(len(dags["top"]), ratio(spec.stage_ratio))

        args = (dags["top"], dags["mid"], dags["bot"], stages)
        rest = (int(num_classes), int(in_shape[0]), op)
        if width is None:
            budget = DEFAULT_BUDGET if param_budget is None else _check_int("param_budget", param_budget, (1, 10**12))
            width = width_for_budget(lambda w: network_params(*args, [w * r for r in channel_ratio], *rest), budget)
        widths = [_check_int("width", width, (1, 4096)) * r for r in channel_ratio]
        from search_spaces.nago_net import NAGONetwork

        return NAGONetwork(*args, widths, num_classes=rest[0], in_channels=rest[1], op=op)

    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """The three levels in one DAG of three disjoint parts (node attribute ``level``):
        per level an ``input`` vertex, one vertex per graph node (``op`` ``cell``, ``node``
        or ``conv3x3``; top-level ones also carry ``stage``) and an ``output`` (sum) vertex
        fed by the sinks.  Vertices are numbered in topological order."""
        spec = self._own(arch).spec
        dags = self.graphs(arch)
        stages = split_stages(len(dags["top"]), ratio(spec.stage_ratio))
        graph = nx.DiGraph()
        for level, label in zip(LEVELS, ("cell", "node", "conv3x3")):
            dag = dags[level]
            base = graph.number_of_nodes()
            graph.add_node(base, op="input", level=level)
            for v, preds in enumerate(dag):
                extra = {"stage": stages[v]} if level == "top" else {}
                graph.add_node(base + 1 + v, op=label, level=level, **extra)
                graph.add_edges_from((base + 1 + u, base + 1 + v) for u in preds)
                if not preds:
                    graph.add_edge(base, base + 1 + v)
            out = base + 1 + len(dag)
            graph.add_node(out, op="output", level=level)
            readers = {u for ps in dag for u in ps}
            graph.add_edges_from((base + 1 + v, out) for v in range(len(dag)) if v not in readers)
        return graph



@register_space("nago-randwire", tag="nago")
class RandWireSpace(NagoSpace):
    """``nago`` restricted to RandWire (:data:`RANDWIRE`), so the CLI names it: ``--space nago-randwire``.
    Its architectures are ``nago`` architectures (same tag, text and networks)."""

    def __init__(self, **options: Any):
        super().__init__(**{"nodes": RANDWIRE, **options})


@register_space("nago-darts-like", tag="nago")
class DartsLikeSpace(NagoSpace):
    """``nago`` restricted to the DARTS-like stack (:data:`DARTS_LIKE`): ``--space nago-darts-like``."""

    def __init__(self, **options: Any):
        super().__init__(**{"nodes": DARTS_LIKE, **options})
