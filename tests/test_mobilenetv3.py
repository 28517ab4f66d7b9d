"""OFA MobileNetV3 space: OFA settings as strings and configs, canonical keys, moves, real networks.

What every space must do (round trips, configs, moves, networks, aliases) is in
test_space_contract.py."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from raynas.graph import trace
from search_spaces import get_space
from search_spaces.mobilenetv3 import CONFIG_KEYS, DEPTHS, EXPANDS, KERNELS, NUM_ARCHS, NUM_BLOCKS, NUM_SETTINGS
from search_spaces.mobilenetv3_net import make_divisible

SPACE = get_space("mobilenetv3")
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def uniform(k: int, e: int, d: int) -> str:
    return f"ks=[{','.join([str(k)] * 20)}],e=[{','.join([str(e)] * 20)}],d=[{','.join([str(d)] * 5)}]"


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def imagenet_params(text: str, **hp) -> int:
    return params(SPACE.build(SPACE.parse(text), num_classes=1000, in_shape=(3, 224, 224), **hp))


# ---------------------------------------------------------------------------- strings
def test_ofa_subnet_dicts_parse_as_printed():
    arch = SPACE.sample(3)
    ks, es, ds = (list(v) for v in arch.spec)
    assert SPACE.parse(str({"ks": ks, "e": es, "d": ds})).same_spec(arch)
    assert SPACE.arch_from_record({"ks": ks, "e": np.array(es), "d": ds, "val_acc": 70.0}).same_spec(arch)
    assert SPACE.parse(" ks = [ 3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3 ] , e=[" + "4," * 19 + "4], d=[2,2,2,2,2] ")


@pytest.mark.parametrize(
    "text, words",
    [
        ("d=[2,2,2,2,2]", ["not an OFA setting", "ks=[20 kernels"]),
        ("{ks=[],e=[],d=[]", ["not an OFA setting"]),
        (uniform(3, 3, 2).replace("ks=[3,", "ks=[3.0,"), ["ks=[3.0,", "list of ints"]),
        (uniform(3, 3, 2).replace("ks=[3,", "ks=["), ["ks needs 20 kernel values", "got (3,"]),
        (uniform(3, 3, 2).replace("d=[2,2,2,2,2]", "d=[2,2,2,2]"), ["d needs 5 depth values"]),
        (uniform(3, 3, 2).replace("ks=[3,3,3,3,3,3,3,3,3", "ks=[3,3,3,3,3,3,3,3,9"), ["stage3_block1_kernel: 9", "[3, 5, 7]"]),
        (uniform(3, 3, 2).replace("e=[3,3", "e=[3,5"), ["stage1_block2_expand: 5", "[3, 4, 6]"]),
        (uniform(3, 3, 2).replace("d=[2,2,2,2,2]", "d=[2,2,2,2,5]"), ["stage5_depth: 5", "[2, 3, 4]"]),
    ],
)
def test_malformed_arch_strings_are_rejected_with_the_reason(text, words):
    with pytest.raises(ValueError) as err:
        SPACE.parse(text)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "key, value, allowed",
    [("stage2_depth", 1, DEPTHS), ("stage4_block3_kernel", 4, KERNELS), ("stage5_block4_expand", 8, EXPANDS),
     ("stage1_block1_kernel", "3", KERNELS)],
)
def test_bad_configs_name_the_key_and_the_allowed_values(key, value, allowed):
    config = SPACE.encode(SPACE.sample(0))
    with pytest.raises(ValueError) as err:
        SPACE.decode({**config, key: value})
    assert str(err.value) == f"{key}: {value!r} is not allowed; allowed values are {list(allowed)}"


def test_specs_must_hold_ints():
    ks, es, ds = SPACE.sample(0).spec
    with pytest.raises(ValueError, match=r"stage1_block1_kernel: 3.0 .*\(int\)"):
        SPACE.make(((3.0,) + ks[1:], es, ds))
    with pytest.raises(ValueError, match="ks needs 20 kernel values"):
        SPACE.make((list(ks), es, ds))
    assert not SPACE.is_valid((ks, es, ds[:4])) and SPACE.is_valid((ks, es, ds))


# ---------------------------------------------------------------------------- canonical keys
def test_blocks_beyond_the_depth_do_not_change_the_key():
    a = SPACE.parse(uniform(5, 4, 2))
    ks, es, ds = a.spec
    unused = [b for b in range(NUM_BLOCKS) if b % 4 >= 2]
    b = SPACE.make((tuple(7 if i in unused else k for i, k in enumerate(ks)),
                    tuple(6 if i in unused else e for i, e in enumerate(es)), ds))
    assert a == b and hash(a) == hash(b) and not a.same_spec(b)
    assert SPACE.canonical(a).same_spec(SPACE.canonical(b))
    assert SPACE.canonical(b).spec[0][2:4] == (3, 3) and SPACE.canonical(b).spec[1][2:4] == (3, 3)
    deeper = SPACE.make((ks, es, (3,) + ds[1:]))  # block 3 of stage 1 becomes active
    assert deeper != a and SPACE.make((ks[:1] + (7,) + ks[2:], es, ds)) != a


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_canonical_keeps_the_network(seed):
    arch = SPACE.sample(seed)
    assert params(SPACE.build(SPACE.canonical(arch))) == params(SPACE.build(arch))


def test_the_space_is_too_large_to_enumerate():
    assert NUM_SETTINGS == 3**5 * 9**20 and NUM_ARCHS == (9**2 + 9**3 + 9**4) ** 5 > 10**19


# ---------------------------------------------------------------------------- Tune side
def test_tune_space_is_plain_tune_domains():
    domains = SPACE.tune_space()
    assert list(domains) == list(CONFIG_KEYS) and len(domains) == 5 + 2 * 20
    assert domains["stage3_depth"].categories == [2, 3, 4]
    assert domains["stage3_block4_kernel"].categories == [3, 5, 7]
    assert domains["stage3_block4_expand"].categories == [3, 4, 6]


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({k: st.sampled_from(d.categories) for k, d in SPACE.tune_space().items()}))
def test_every_combination_of_domain_values_is_valid(config):
    assert SPACE.encode(SPACE.decode(config)) == config


# ---------------------------------------------------------------------------- search moves
def edits(a, b) -> int:
    """Number of places where the written settings of ``a`` and ``b`` differ."""
    return sum(x != y for x, y in zip(sum(a.spec, ()), sum(b.spec, ())))


def test_samples_are_valid_and_cover_every_choice():
    archs = [SPACE.sample(s) for s in range(100)]
    assert all(SPACE.is_valid(a) for a in archs) and len(set(archs)) == 100
    for field, options in enumerate((KERNELS, EXPANDS, DEPTHS)):
        assert {v for a in archs for v in a.spec[field]} == set(options)


def test_neighbors_are_distinct_single_edits():
    arch = SPACE.sample(5)
    neighbors = SPACE.neighbors(arch)
    assert len(neighbors) == len(set(neighbors)) == 5 * 2 + 4 * sum(arch.spec[2])
    assert all(edits(arch, n) == 1 for n in neighbors)
    inactive = [b for b in range(NUM_BLOCKS) if b % 4 >= arch.spec[2][b // 4]]
    assert not any(n.spec[0][b] != arch.spec[0][b] or n.spec[1][b] != arch.spec[1][b] for n in neighbors for b in inactive)


def test_mutate_changes_exactly_one_choice_and_stays_valid():
    rng = np.random.default_rng(1)
    arch = SPACE.sample(7)
    neighbors = set(SPACE.neighbors(arch))
    children = [SPACE.mutate(arch, rng) for _ in range(40)]
    assert all(SPACE.is_valid(c) and c != arch and c in neighbors for c in children)
    assert len(set(children)) > 20 and all(edits(arch, c) == 1 for c in children)


def test_cell_graph_is_the_chain_of_active_blocks():
    arch = SPACE.sample(2)
    graph = SPACE.cell_graph(arch)
    assert graph.number_of_nodes() == sum(arch.spec[2]) + 2
    assert list(nx.topological_sort(graph)) == list(range(graph.number_of_nodes()))
    ops = [d["op"] for _, d in graph.nodes(data=True)]
    assert ops[0] == "input" and ops[-1] == "output"
    ks, es, ds = arch.spec
    assert ops[1 : 1 + ds[0]] == [f"mbconv_k{ks[b]}_e{es[b]}" for b in range(ds[0])]
    assert [d["se"] for _, d in graph.nodes(data=True) if d.get("block") == 1] == [False, True, False, True, True]


# ---------------------------------------------------------------------------- networks
@pytest.mark.parametrize(
    "in_shape, num_classes, hp",
    [((1, 8, 8), 7, {"stem_stride": 1}), ((3, 1, 1), 3, {}), ((3, 32, 32), 10, {"width": 0.5, "dropout": 0.0})],
)
def test_network_maps_images_to_logits(in_shape, num_classes, hp):
    model = SPACE.build(SPACE.sample(11), num_classes=num_classes, in_shape=in_shape, **hp)
    out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, num_classes) and torch.isfinite(out).all()
    out.sum().backward()


def test_stem_stride_one_keeps_four_times_the_pixels():
    arch = SPACE.parse(uniform(3, 3, 2))
    sizes = []
    for stride in (2, 1):
        model = SPACE.build(arch, in_shape=(3, 32, 32), stem_stride=stride).eval()
        with torch.no_grad():
            sizes.append(model.blocks(model.stem(torch.zeros(1, 3, 32, 32))).shape[-2:])
    assert sizes == [(1, 1), (2, 2)]


def test_traced_graph_has_depthwise_convs_with_the_chosen_kernels():
    arch = SPACE.parse(uniform(7, 4, 2).replace("ks=[7,7", "ks=[5,3"))
    model = SPACE.build(arch, num_classes=10, in_shape=(3, 32, 32))
    cg = trace(model, (1, 3, 32, 32))
    nodes = [d for _, d in cg.graph.nodes(data=True)]
    depthwise = [d for d in nodes if d["op"] == "conv" and d["groups"] > 1 and d["groups"] == d["Cin"]]
    assert len(depthwise) == 1 + 2 * 5  # the fixed first block and two per stage
    assert sorted(d["kernel"] for d in depthwise) == [3, 3] + [5] + [7] * 8
    assert {"conv", "bn", "relu", "activation", "mul", "add", "linear"} <= set(cg.op_types())
    assert cg.params == params(model)


def test_parameter_counts_match_ofa_and_grow_with_every_choice():
    largest, smallest = imagenet_params(uniform(7, 6, 4)), imagenet_params(uniform(3, 3, 2))
    assert largest == 7_664_760 and smallest == 3_410_792  # OFA's MobileNetV3 w1.0 range
    assert imagenet_params(uniform(7, 6, 4), width=1.2) == 10_701_632
    base = SPACE.parse(uniform(5, 4, 3))
    ks, es, ds = base.spec
    count = params(SPACE.build(base))
    for bigger in ((ks[:5] + (7,) + ks[6:], es, ds), (ks, es[:5] + (6,) + es[6:], ds), (ks, es, ds[:1] + (4,) + ds[2:])):
        assert params(SPACE.build(SPACE.make(bigger))) > count
    assert smallest < imagenet_params(str(SPACE.sample(0))) < largest


def test_hidden_widths_follow_the_mobilenet_rounding():
    assert [make_divisible(v) for v in (16, 24 * 1.2, 40 * 1.2, 72, 4, 100)] == [16, 32, 48, 72, 8, 104]


@pytest.mark.parametrize(
    "hp, words",
    [({"depth_mult": 2}, "unknown MobileNetV3 build options ['depth_mult']"), ({"width": 0}, "width: 0"),
     ({"stem_stride": 4}, "stem_stride: 4 is not allowed; allowed values are [1, 2]"), ({"dropout": 1.0}, "dropout: 1.0")],
)
def test_build_rejects_bad_options(hp, words):
    with pytest.raises(ValueError) as err:
        SPACE.build(SPACE.sample(0), **hp)
    assert words in str(err.value)
