"""The ``SearchSpace`` contract (search_spaces/base.py), checked once for every registered space.

Every test is parametrised by registered name (``available_spaces()``), one name per class:
aliases (``nb301`` of ``darts``; ``mbv3``, ``ofa`` of ``mobilenetv3``) are skipped, see
:data:`NAMES`.  ``darts-edges`` is not an alias: it is its own class (it decodes other config
keys), so it runs the whole suite, although its Archs are tagged ``darts``.

What a space has to declare for the suite is in :data:`PROFILES`: small build options (fast
networks), the arch strings its own tests single out as edge cases, and whether and how it
enumerates.  Space-specific behaviour (official orders, hashes, genotype details, graph
seeds, ...) is tested in the space's own file.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import pickle
from typing import Any

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ray.tune.search.sample import Domain
from ray.tune.search.variant_generator import generate_variants
from torch import nn

from raynas import Arch
from search_spaces import available_spaces, get_space


@dataclasses.dataclass(frozen=True)
class Profile:
    """What the contract suite needs to know about one space."""

    #: ``build`` options that give a small, fast network
    build: dict[str, Any]
    #: arch strings the space's own tests single out (edge cases); checked besides samples
    examples: tuple[str, ...] = ()
    #: archs of ``enumerate()`` to check; None: the space is too large and raises TypeError
    enumerate_prefix: int | None = None
    #: whether ``enumerate()`` yields one arch per key (NB201's official order lists all
    #: 15,625 written cells, equivalent ones included, so its keys repeat; its texts do not)
    enumerate_one_per_key: bool = True
    #: start of the ValueError a config drawn from ``tune_space()`` may raise (NB101: some bit
    #: patterns are not valid cells, by design, about a quarter of draws); None: every draw decodes
    domain_error: str | None = None


DARTS_V2 = (  # DARTS_V2 of the DARTS repository's genotypes.py (pairs not sorted by input)
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
DARTS = Profile(build={"C": 4, "layers": 3}, examples=(DARTS_V2,))  # one cell per stage, both cell types
PROFILES: dict[str, Profile] = {
    "nb201": Profile(
        build={"C": 8, "N": 1},
        examples=(
            # official index 6111
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # the zero cell (output unreachable)
        ),
        enumerate_prefix=300,
        enumerate_one_per_key=False,
    ),
    "nb101": Profile(
        build={"stem_channels": 8, "num_modules_per_stack": 1},
        examples=(
            # the Inception-like cell of the nasbench README (test_nb101.README_CELL)
            "adj=0111010/0000001/0000001/0000100/0000001/0000001/0000000;"
            "ops=input,conv1x1-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,maxpool3x3,output",
            "adj=01/00;ops=input,output",  # the trivial cell: no vertex ops, no neighbours
            "adj=011/001/000;ops=input,maxpool3x3,output",  # fewer than 7 vertices
        ),
        enumerate_prefix=300,
        domain_error="adj:",
    ),
    "darts": DARTS,
    "darts-edges": DARTS,
    "darts-csnas": Profile(build={"C": 4, "layers": 3}),
    "mobilenetv3": Profile(build={}),
    "nago": Profile(
        build={"param_budget": 70_000},
        examples=(
            "top=ws(n=6,k=4,p=0.75)|mid=er(n=5,p=0.5)|bot=ws(n=4,k=2,p=0.3)|stages=1:1:1|channels=1:2:4|seed=0",
            "top=ws(n=3,k=2,p=0.5)|mid=er(n=3,p=0.9)|bot=ws(n=3,k=2,p=0.5)|stages=1:1:1|channels=1:2:4|seed=0",
        ),
    ),
    "nago-randwire": Profile(build={"width": 2}),
    "nago-darts-like": Profile(build={"width": 2}),
}

#: ``(in_shape, num_classes)`` cases of the network check, the union of the per-space tests'
BUILD_CASES: list[tuple[tuple[int, int, int], int]] = [
    ((3, 32, 32), 10),  # CIFAR
    ((1, 8, 8), 7),
    ((1, 8, 8), 3),
    ((1, 9, 13), 7),  # odd and not square
    ((3, 5, 7), 2),  # tiny and odd
]
#: seeds of the sampled archs the network check builds (besides the profile's examples)
BUILD_SEEDS = (0, 3, 11)
#: sampled archs (seeds 0..11) the deterministic checks use besides the profile's examples
SAMPLE_SEEDS = range(12)
#: mutations drawn per example arch and per sampled arch
EXAMPLE_MUTATIONS, SAMPLE_MUTATIONS = 20, 3
#: keys no space owns (trainer settings and the space's name ride along in a trial config)
FOREIGN = {"space": "x", "lr": 0.1, "epochs": 3, "batch_size": 64, "dataset": "synthetic:64"}
#: values no config key allows
BAD_VALUES = ("conv", -1, 2.5, None)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
ROUND_TRIPS = settings(max_examples=60, deadline=None)


def over_spaces_and_seeds(test):
    """Run ``test(name, seed)`` for every space and 60 hypothesis seeds, seed 0 among them."""
    return pytest.mark.parametrize("name", NAMES)(ROUND_TRIPS(given(seed=SEEDS)(example(seed=0)(test))))


# ---------------------------------------------------------------------------- which names run
def _primary_names() -> dict[str, str]:
    """Registered name -> the name whose run covers its class: the class's own tag when that
    name builds it (``mbv3`` -> ``mobilenetv3``), else its first name (``darts-edges``)."""
    by_class: dict[type, list[str]] = {}
    for name in available_spaces():
        by_class.setdefault(type(get_space(name)), []).append(name)
    primary = {}
    for cls, names in by_class.items():
        first = cls.name if cls.name in names else names[0]
        primary.update((name, first) for name in names)
    return primary


PRIMARY = _primary_names()
# Parametrise over the names that cover a class; an alias (nb301 = darts, mbv3 = ofa =
# mobilenetv3) is left out because it constructs a class already covered, with the same
# options, so it would only repeat that run.  test_alias_constructs_the_class_of_its_space
# checks that claim for every alias.
NAMES = [name for name in available_spaces() if PRIMARY[name] == name]
ALIASES = [name for name in available_spaces() if PRIMARY[name] != name]


@functools.lru_cache(maxsize=None)
def space_of(name: str):
    return get_space(name)


def profile_of(name: str) -> Profile:
    if name not in PROFILES:
        pytest.fail(f"space {name!r} has no Profile in tests/test_space_contract.py; add one")
    return PROFILES[name]


@functools.lru_cache(maxsize=None)
def example_archs(name: str) -> tuple[Arch, ...]:
    return tuple(space_of(name).parse(text) for text in profile_of(name).examples)


@functools.lru_cache(maxsize=None)
def sampled_archs(name: str) -> tuple[Arch, ...]:
    return tuple(space_of(name).sample(seed) for seed in SAMPLE_SEEDS)


def checked_archs(name: str) -> tuple[Arch, ...]:
    return example_archs(name) + sampled_archs(name)


def assert_arch_of(space, arch: Arch) -> None:
    assert isinstance(arch, Arch) and arch.space == space.name and space.is_valid(arch), arch


# ---------------------------------------------------------------------------- strings and configs
@over_spaces_and_seeds
def test_str_round_trips_through_parse(name, seed):
    space = space_of(name)
    arch = space.sample(seed)
    assert space.parse(str(arch)).same_spec(arch)
    canonical = space.canonical(arch)
    assert space.parse(str(canonical)).same_spec(canonical)


@over_spaces_and_seeds
def test_encode_decode_round_trip_and_decode_ignores_foreign_keys(name, seed):
    space = space_of(name)
    arch = space.sample(seed)
    config = space.encode(arch)
    assert set(config) == set(space.config_keys())
    assert space.decode(config).same_spec(arch)
    assert space.decode({**config, **FOREIGN}).same_spec(arch)
    canonical = space.canonical(arch)
    assert space.decode(space.encode(canonical)) == canonical


@pytest.mark.parametrize("name", NAMES)
def test_tune_space_keys_are_the_config_keys_and_domain_samples_decode(name):
    space, profile = space_of(name), profile_of(name)
    domains = space.tune_space()
    assert list(domains) == space.config_keys()
    assert all(isinstance(d, Domain) for d in domains.values())

    def decoded(config: dict) -> Arch | None:
        try:
            arch = space.decode(config)
        except ValueError as err:
            if profile.domain_error is None:
                raise
            assert str(err).startswith(profile.domain_error), err
            return None
        assert_arch_of(space, arch)
        assert set(space.encode(arch)) == set(domains)
        return arch

    rng = np.random.RandomState(0)
    archs = [decoded({k: d.sample(random_state=rng) for k, d in domains.items()}) for _ in range(200)]
    valid = [a for a in archs if a is not None]
    if profile.domain_error is None:
        assert len(valid) == 200
    else:
        assert valid
    if profile.enumerate_prefix is None:  # too large for 200 draws to repeat a key
        assert len(set(valid)) == len(valid)
    for options in ({}, {"constant_grid_search": True}):  # Tune's own sampling path, trainer keys beside
        variants = [config for _, config in generate_variants({**domains, "lr": 0.1, "epochs": 1}, **options)]
        assert len(variants) == 1
        decoded(variants[0])


# ---------------------------------------------------------------------------- values and moves
@over_spaces_and_seeds
def test_sample_gives_reproducible_valid_archs_of_the_space(name, seed):
    space = space_of(name)
    arch = space.sample(seed)
    assert_arch_of(space, arch)
    assert space.sample(seed).same_spec(arch) and space.sample(np.random.default_rng(seed)).same_spec(arch)


@pytest.mark.parametrize("name", NAMES)
def test_neighbors_are_valid_distinct_and_differ_from_the_arch(name):
    space = space_of(name)
    for arch in checked_archs(name):
        neighbors = space.neighbors(arch)
        for other in neighbors:
            assert_arch_of(space, other)
        assert len(set(neighbors)) == len(neighbors), arch
        assert arch not in neighbors, arch


@pytest.mark.parametrize("name", NAMES)
def test_mutate_returns_a_different_valid_arch(name):
    space = space_of(name)
    rng = np.random.default_rng(1)
    for archs, draws in ((example_archs(name), EXAMPLE_MUTATIONS), (sampled_archs(name), SAMPLE_MUTATIONS)):
        for arch in archs:
            for _ in range(draws):
                child = space.mutate(arch, rng)
                assert_arch_of(space, child)
                assert child != arch, arch


@pytest.mark.parametrize("name", NAMES)
@ROUND_TRIPS
@given(seed=SEEDS)
def test_canonical_keeps_the_key(name, seed):
    space = space_of(name)
    arch = space.sample(seed)
    canonical = space.canonical(arch)
    assert_arch_of(space, canonical)
    assert canonical == arch and canonical.key == arch.key
    assert space.canonical(canonical).same_spec(canonical)  # idempotent


@pytest.mark.parametrize("name", NAMES)
def test_sample_unique_gives_n_distinct_keys(name):
    space = space_of(name)
    for n in (1, 20):
        archs = space.sample_unique(n, rng=0)
        assert len(archs) == n and len({a.key for a in archs}) == n
        for arch in archs:
            assert_arch_of(space, arch)


@pytest.mark.parametrize("name", NAMES)
def test_config_missing_a_key_raises_value_error_naming_it(name):
    space = space_of(name)
    config = space.encode(space.sample(0))
    for key in space.config_keys():
        with pytest.raises(ValueError) as err:
            space.decode({k: v for k, v in config.items() if k != key})
        assert f"missing keys {[key]}" in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_config_with_a_bad_value_raises_value_error_naming_the_key(name):
    space = space_of(name)
    config = space.encode(space.sample(0))
    for key, value in itertools.product(space.config_keys(), BAD_VALUES):
        with pytest.raises(ValueError) as err:
            space.decode({**config, key: value})
        assert str(err.value).startswith(f"{key}: {value!r} is not allowed; allowed values are"), err.value


# ---------------------------------------------------------------------------- networks and graphs
def _build_params() -> list:
    out = []
    for name, (in_shape, num_classes) in itertools.product(NAMES, BUILD_CASES):
        case = f"{name}-{'x'.join(map(str, in_shape))}-{num_classes}"
        out.append(pytest.param(name, in_shape, num_classes, id=case))
    return out


@pytest.mark.parametrize("name, in_shape, num_classes", _build_params())
def test_build_maps_a_batch_to_logits(name, in_shape, num_classes):
    space = space_of(name)
    torch.manual_seed(0)
    for arch in example_archs(name) + tuple(space.sample(seed) for seed in BUILD_SEEDS):
        model = space.build(arch, num_classes=num_classes, in_shape=in_shape, **profile_of(name).build)
        assert isinstance(model, nn.Module)
        out = model(torch.randn(2, *in_shape))
        assert out.shape == (2, num_classes) and torch.isfinite(out).all(), arch
        out.sum().backward()


@pytest.mark.parametrize("name", NAMES)
def test_cell_graph_is_a_dag_with_an_op_on_every_node(name):
    space = space_of(name)
    for arch in checked_archs(name):
        graph = space.cell_graph(arch)
        assert isinstance(graph, nx.DiGraph) and graph.number_of_nodes() > 0
        assert nx.is_directed_acyclic_graph(graph), arch
        assert all(isinstance(op, str) and op for _, op in graph.nodes(data="op")), arch


@pytest.mark.parametrize("name", NAMES)
def test_enumerate_yields_valid_distinct_archs_or_raises_type_error(name):
    space, profile = space_of(name), profile_of(name)
    if profile.enumerate_prefix is None:
        with pytest.raises(TypeError, match="too large to enumerate"):
            space.enumerate()
        return
    archs = list(itertools.islice(space.enumerate(), profile.enumerate_prefix))
    assert len(archs) == profile.enumerate_prefix
    for arch in archs:
        assert_arch_of(space, arch)
    assert len({a.text for a in archs}) == len(archs)
    if profile.enumerate_one_per_key:
        assert len({a.key for a in archs}) == len(archs)


# ---------------------------------------------------------------------------- Arch values
@pytest.mark.parametrize("name", NAMES)
def test_archs_pickle_and_equal_keys_hash_equal(name):
    space = space_of(name)
    for arch in checked_archs(name):
        again = pickle.loads(pickle.dumps(arch))
        assert again.same_spec(arch) and again == arch and hash(again) == hash(arch)
        with pytest.raises(AttributeError):
            arch.text = "x"  # type: ignore[misc]
        for same in (space.canonical(arch), space.parse(str(arch))):
            assert same.key == arch.key and same == arch and hash(same) == hash(arch)


@pytest.mark.parametrize("alias", ALIASES)
def test_alias_constructs_the_class_of_its_space(alias):
    """Why skipping aliases loses nothing: an alias builds the class of the name that runs."""
    space, covered = get_space(alias), space_of(PRIMARY[alias])
    assert type(space) is type(covered) and space.name == covered.name
    arch = space.sample(0)
    assert arch.space == covered.name and arch.same_spec(covered.sample(0))
    assert space.parse(str(arch)) == arch and space.decode(space.encode(arch)) == arch and space.is_valid(arch)
