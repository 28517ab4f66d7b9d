"""NAGO generator space: strings and configs, reproducible graphs, K clamping, networks, trainable.

What every space must do (round trips, configs, moves, networks) is in test_space_contract.py,
for the default options; the searched-ratios variant is checked here."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from ray.tune.search.variant_generator import generate_variants

from raynas.graph import trace
from search_spaces import get_space
from raynas.trainables.sampled import SampledTrainable
from search_spaces.nago import HYPER
from search_spaces.nago_graphs import effective_k, network_params, sample_dag, sinks, split_stages

SPACE = get_space("nago")
TEXT = "top=ws(n=6,k=4,p=0.75)|mid=er(n=5,p=0.5)|bot=ws(n=4,k=2,p=0.3)|stages=1:1:1|channels=1:2:4|seed=0"
ARCH = SPACE.parse(TEXT)
TINY = SPACE.parse("top=ws(n=3,k=2,p=0.5)|mid=er(n=3,p=0.9)|bot=ws(n=3,k=2,p=0.5)|stages=1:1:1|channels=1:2:4|seed=0")


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_string_and_config_round_trip():
    assert str(ARCH) == TEXT and SPACE.parse(f" {TEXT.replace('|', ' | ')} ").same_spec(ARCH)
    ratios = get_space("nago", search_ratios=True)
    for seed in range(20):
        arch = ratios.sample(seed)
        assert ratios.parse(str(arch)).same_spec(arch)
        assert ratios.decode({**ratios.encode(arch), "lr": 0.1}).same_spec(arch)
    assert set(SPACE.encode(ARCH)) == set(HYPER)  # Ax and Tune see exactly the searched keys
    other = SPACE.with_seed(ARCH, 7)
    assert SPACE.encode(other)["graph_seed"] == 7 and SPACE.decode(SPACE.encode(other)).same_spec(other)


def test_tune_sampling_with_searched_ratios_decodes_to_valid_archs():
    space = get_space("nago", search_ratios=True)
    variants = list(generate_variants({**space.tune_space(), "epochs": 1}, constant_grid_search=True))
    for seed in range(30):
        config = {k: v.sample(random_state=np.random.RandomState(seed)) for k, v in space.tune_space().items()}
        arch = space.decode({**config, **variants[0][1]})
        assert space.is_valid(arch) and set(space.encode(arch)) == set(space.tune_space())


def test_graph_sampling_is_reproducible_per_seed():
    assert SPACE.graphs(ARCH) == SPACE.graphs(SPACE.parse(TEXT))
    draws = {tuple(SPACE.graphs(SPACE.with_seed(ARCH, s)).values()) for s in range(6)}
    assert len(draws) > 1  # another seed, another network of the same generator
    for dag in SPACE.graphs(ARCH).values():
        assert all(u < v for v, preds in enumerate(dag) for u in preds)  # ordered by node index
        undirected = nx.Graph([(u, v) for v, preds in enumerate(dag) for u in preds])
        assert nx.is_connected(undirected) and undirected.number_of_nodes() == len(dag)


def test_k_is_clamped_to_nodes_minus_one_and_odd_k_acts_as_k_minus_one():
    assert [effective_k(3, k) for k in (2, 3, 4, 5)] == [2, 2, 2, 2]
    assert effective_k(6, 5) == 4 and effective_k(10, 5) == 4 and effective_k(10, 2) == 2
    clamped = SPACE.parse(TEXT.replace("bot=ws(n=4,k=2", "bot=ws(n=4,k=5"))
    assert clamped == ARCH and SPACE.graphs(clamped) == SPACE.graphs(ARCH) and not clamped.same_spec(ARCH)
    odd = SPACE.parse(TEXT.replace("top=ws(n=6,k=4", "top=ws(n=6,k=5"))
    assert odd == ARCH and SPACE.graphs(odd)["top"] == SPACE.graphs(ARCH)["top"]
    # a complete ring (k >= n - 1) cannot be rewired, so p does not matter
    assert TINY == SPACE.parse(str(TINY).replace("top=ws(n=3,k=2,p=0.5)", "top=ws(n=3,k=5,p=0.1)"))
    assert ARCH != SPACE.parse(TEXT.replace("p=0.75", "p=0.76"))


def test_disconnected_draws_are_retried_then_raise_a_clear_error():
    failing = next(s for s in range(200) if not nx.is_connected(nx.erdos_renyi_graph(10, 0.2, seed=_seed(s))))
    with pytest.raises(ValueError, match=r"mid level: no connected er\(n=10, p=0.2\) graph in 1 draws.*max_tries"):
        sample_dag("er", 10, 0, 0.2, seed=failing, level=1, max_tries=1)
    assert len(sample_dag("er", 10, 0, 0.2, seed=failing, level=1, max_tries=100)) == 10  # a later draw connects
    strict = get_space("nago", max_tries=1)
    arch = strict.parse(TEXT.replace("mid=er(n=5,p=0.5)", "mid=er(n=10,p=0.2)").replace("seed=0", f"seed={failing}"))
    with pytest.raises(ValueError, match="max_tries"):
        strict.build(arch, in_shape=(1, 8, 8), width=1)


def _seed(s: int) -> int:
    from search_spaces.nago_graphs import level_seed

    return level_seed(s, 1, 0)


def test_width_is_the_largest_within_the_parameter_budget():
    for budget in (20_000, 60_000):
        model = SPACE.build(ARCH, in_shape=(1, 8, 8), param_budget=budget)
        width = model.stem[0].out_channels
        assert params(model) <= budget < params(SPACE.build(ARCH, in_shape=(1, 8, 8), width=width + 1))
    for op in ("conv3x3", "conv5x5", "sep_conv3x3"):
        model = SPACE.build(ARCH, in_shape=(3, 8, 8), width=3, op=op)
        dags = SPACE.graphs(ARCH)
        counted = network_params(*dags.values(), split_stages(6, (1, 1, 1)), [3, 6, 12], 10, 3, op)
        assert params(model) == counted
    with pytest.raises(ValueError, match="param_budget: 100 .*must be >= "):
        SPACE.build(ARCH, param_budget=100)


def test_fixed_width_lets_the_parameter_count_follow_the_generator():
    small, large = (params(SPACE.build(a, in_shape=(1, 8, 8), width=4)) for a in (TINY, ARCH))
    assert small < large


def test_raynas_graph_traces_the_network():
    model = SPACE.build(ARCH, in_shape=(1, 8, 8), width=2)
    cg = trace(model, (1, 1, 8, 8))
    assert cg.params == params(model)
    ops = cg.op_types()
    dags = SPACE.graphs(ARCH)
    assert ops.count("conv") >= len(dags["top"]) * len(dags["mid"]) * len(dags["bot"])
    assert {"relu", "bn", "add", "linear"} <= set(ops)


def test_cell_graph_holds_the_three_levels():
    graph = SPACE.cell_graph(ARCH)
    dags = SPACE.graphs(ARCH)
    assert all(u < v for u, v in graph.edges)
    for level, label in (("top", "cell"), ("mid", "node"), ("bot", "conv3x3")):
        ops = [op for _, op in graph.nodes(data="op") if op == label]
        assert len(ops) == len(dags[level])
    out = [v for v, a in graph.nodes(data=True) if a["op"] == "output" and a["level"] == "top"][0]
    assert graph.in_degree(out) == len(sinks(dags["top"]))
    assert [a["stage"] for _, a in graph.nodes(data=True) if a["op"] == "cell"] == [0, 0, 1, 1, 2, 2]


def test_stages_split_top_level_nodes_by_ratio():
    assert split_stages(3, (1, 1, 1)) == (0, 1, 2)
    assert split_stages(10, (1, 1, 1)) == (0, 0, 0, 0, 1, 1, 1, 2, 2, 2)
    assert split_stages(4, (2, 1, 1)) == (0, 0, 1, 2)
    assert split_stages(3, (2, 2, 1)) == (0, 1, 2)  # at least one node per stage


@pytest.mark.parametrize(
    "change, words",
    [
        ({"top_nodes": 11}, r"top_nodes: 11 is not allowed; allowed values are the integers 3\.\.10"),
        ({"bot_k": 1}, r"bot_k: 1 .*integers 2\.\.5"),
        ({"mid_p": 0.1}, r"mid_p: 0.1 .*\[0.2, 1.0\]"),
        ({"top_p": "high"}, r"top_p: 'high' .*\[0.1, 1.0\]"),
        ({"mid_nodes": 4.5}, "mid_nodes"),
        ({"stage_ratio": "3:3:3"}, r"stage_ratio: '3:3:3' is not allowed; allowed values are \['1:1:1'"),
        ({"graph_seed": -1}, "graph_seed"),
    ],
)
def test_bad_config_values_name_the_field_and_the_allowed_range(change, words):
    with pytest.raises(ValueError, match=words):
        SPACE.decode({**SPACE.encode(ARCH), **change})


def test_bad_strings_and_build_options_are_named():
    with pytest.raises(ValueError, match="malformed; expected e.g. top=ws"):
        SPACE.parse("top=ws(6,4,0.75)")
    with pytest.raises(ValueError, match="mid level must be er"):
        SPACE.parse(TEXT.replace("mid=er(n=5,p=0.5)", "mid=ws(n=5,k=2,p=0.5)"))
    with pytest.raises(ValueError, match="top_nodes: 2"):
        SPACE.parse(TEXT.replace("top=ws(n=6", "top=ws(n=2"))
    with pytest.raises(ValueError, match="op: 'pool' .*'conv3x3'"):
        SPACE.build(ARCH, op="pool")
    with pytest.raises(ValueError, match="width or param_budget, not both"):
        SPACE.build(ARCH, width=4, param_budget=10_000)
    with pytest.raises(ValueError, match="unknown NAGO build options"):
        SPACE.build(ARCH, C=4)
    with pytest.raises(ValueError, match="channel_ratio"):
        get_space("nago", channel_ratio="1:9:9")


def test_neighbors_move_one_hyper_parameter():
    neighbors = SPACE.neighbors(ARCH)
    assert neighbors
    for other in neighbors:
        changed = [f for f in ARCH.spec._fields if getattr(ARCH.spec, f) != getattr(other.spec, f)]
        assert len(changed) == 1 and changed[0] in HYPER


def test_sampled_trainable_reports_mean_and_spread_over_graph_draws():
    config = {**SPACE.encode(TINY), "space": "nago", "dataset": "synthetic:64", "epochs": 2, "graph_samples": 2,
              "build": {"width": 2}}  # fmt: skip
    trainable = SampledTrainable(config=config)
    first = trainable.train()
    assert first["graph_samples"] == 2 and first["val_acc_std"] >= 0 and first["val_acc_min"] <= first["val_acc"]
    assert len({str(d.arch) for d in trainable.draws}) == 2  # graph seeds 0 and 1
    checkpoint = trainable.save()
    expected = trainable.train()
    assert expected["done"] and "test_acc" in expected
    restored = SampledTrainable(config=config)
    restored.restore(checkpoint)
    assert restored.train()["val_acc"] == expected["val_acc"]
    trainable.stop()
    restored.stop()


@pytest.mark.parametrize("case, counts", [("RANDWIRE", {"top": 3, "mid": 1, "bot": 32}), ("DARTS_LIKE", {"top": 20, "mid": 1})])
def test_paper_special_cases_build_with_their_node_counts(case, counts):
    import search_spaces.nago as nago

    space = get_space("nago", nodes=getattr(nago, case))
    for seed in range(2):
        arch = space.sample(seed)
        graphs = space.graphs(arch)
        assert {level: len(graphs[level]) for level in counts} == counts
        assert space.decode(space.encode(arch)).same_spec(arch) and space.parse(str(arch)).same_spec(arch)
        net = space.build(arch, num_classes=10, in_shape=(1, 8, 8), width=2)
        assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert all(len(space.graphs(n)["top"]) == counts["top"] for n in space.neighbors(arch))  # fixed counts stay fixed


@pytest.mark.parametrize("name, case", [("nago-randwire", "RANDWIRE"), ("nago-darts-like", "DARTS_LIKE")])
def test_the_special_cases_are_spaces_the_cli_names_holding_nago_archs(name, case):
    import search_spaces.nago as nago

    space, general = get_space(name), get_space("nago", nodes=getattr(nago, case))
    arch = space.sample(3)
    assert arch.space == "nago" and arch == general.sample(3) and general.parse(str(arch)) == arch
    assert space.decode(space.encode(arch)) == arch and space.tune_space().keys() == general.tune_space().keys()


def test_node_ranges_are_configurable_and_checked():
    space = get_space("nago", nodes={"bot": (12, 16)})
    assert {space.sample(s).spec.bot_nodes for s in range(20)} <= set(range(12, 17))
    with pytest.raises(ValueError, match="bot_nodes.*12..16"):
        space.decode({**SPACE.encode(ARCH)})  # bot_nodes 4 is outside this space's range
    with pytest.raises(ValueError, match="unknown levels"):
        get_space("nago", nodes={"middle": 1})
    with pytest.raises(ValueError, match="top.*low"):
        get_space("nago", nodes={"top": 2})  # fewer top-level nodes than the 3 stages


def test_size_objective_fixes_the_width_so_the_front_spreads_in_size():
    from raynas.experiment import SearchSettings
    from search_spaces.nago import SIZE_OBJECTIVE_WIDTH

    multi = SearchSettings(space="nago", objectives={"val_acc": "max", "params": "min"}).check()
    assert multi.trainer_options["build"] == {"width": SIZE_OBJECTIVE_WIDTH}
    sizes = {params(SPACE.build(SPACE.sample(s), in_shape=(1, 8, 8), **multi.trainer_options["build"])) for s in range(6)}
    assert max(sizes) > 2 * min(sizes)  # at a budget every network would have about the same count
    given = SearchSettings(space="nago", objectives={"val_acc": "max", "params": "min"}, trainer_options={"build": {"param_budget": 5000}})
    assert given.check().trainer_options["build"] == {"param_budget": 5000}  # a build given wins
    assert "build" not in SearchSettings(space="nago").check().trainer_options  # one objective: the budget
