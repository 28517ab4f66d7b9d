"""AxSearcher: Ax's Client behind a raynas searcher, in a plain loop and inside Tune."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from ray import tune

from search_spaces import get_space
from searchers.ax_searcher import AxSearcher

REPO = Path(__file__).resolve().parents[1]
CHEAP = {"num_restarts": 2, "raw_samples": 64}  # acquisition optimiser options: fast, still BO
WEIGHT = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0, "avg_pool_3x3": 0.5, "none": 0.0}


def score(config: dict) -> dict[str, float]:
    """Synthetic results: accuracy rises with convolutions, and so does the parameter count."""
    ops = [v for k, v in config.items() if k.startswith("edge_")]
    return {
        "val_acc": sum(WEIGHT[op] for op in ops),
        "params": float(sum(op == "nor_conv_3x3" for op in ops) * 9 + sum(op == "nor_conv_1x1" for op in ops)),
    }


def run(searcher: AxSearcher, steps: int, start: int = 0) -> list[str]:
    """Plain suggest/complete loop; returns the suggested configs' canonical keys."""
    keys = []
    for i in range(start, start + steps):
        config = searcher.suggest(str(i))
        keys.append(searcher.space.decode(config).key)
        searcher.on_trial_complete(str(i), score(config))
    return keys


def statuses(searcher: AxSearcher) -> dict[int, str]:
    table = searcher.client.summarize()
    return dict(zip(table["trial_index"], table["trial_status"]))


def test_plain_loop_never_repeats_a_canonical_arch_and_tracks_the_best():
    searcher = AxSearcher("nb201", "val_acc", "max", seed=0, num_initial=4, optimizer_options=CHEAP)
    keys = run(searcher, 8)
    assert len(set(keys)) == 8
    assert any("BO_MIXED" in node for node in searcher.client.summarize()["generation_node"])
    arch, value = searcher.best()
    assert value == max(v for _, v in searcher.history)
    assert score(searcher.space.encode(arch))["val_acc"] == value


def test_same_seed_gives_the_same_search():
    def keys(seed: int) -> list[str]:
        return run(AxSearcher("nb201", "val_acc", "max", seed, num_initial=3, optimizer_options=CHEAP), 4)

    assert keys(3) == keys(3) != keys(4)


def test_equivalent_proposals_are_settled_in_ax_without_running():
    searcher = AxSearcher("nb201", metric="val_acc", mode="max", seed=0, num_initial=4)
    space = searcher.space
    done = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    twin = space.parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    assert done == twin and not done.same_spec(twin)
    searcher.add_evaluated_point(space.encode(done), score(space.encode(done))["val_acc"])
    running_config = searcher.suggest("running")

    client, real = searcher.client, searcher.client.get_next_trials
    repeats = [space.encode(twin), running_config]
    attached: list[int] = []

    def repeating(max_trials: int) -> dict:
        if repeats:
            params = repeats.pop(0)
            attached.append(client.attach_trial(params))
            return {attached[-1]: params}
        return real(max_trials=max_trials)

    client.get_next_trials = repeating
    fresh = space.decode(searcher.suggest("fresh"))
    assert fresh not in (done, space.decode(running_config))
    assert statuses(searcher)[attached[0]] == "COMPLETED"  # Ax learns the twin's known result...
    table = client.summarize().set_index("trial_index")
    assert table.loc[attached[0], "val_acc"] == score(space.encode(done))["val_acc"]
    assert statuses(searcher)[attached[1]] == "ABANDONED"  # a running arch is not proposed twice


def test_multi_objective_search_returns_a_non_dominated_pareto_front():
    objectives = {"val_acc": "max", "params": "min"}
    # Sobol only: a multi-objective BO step over NB201's 6 categorical edges costs ~60 s here;
    # test_multiobjective.py takes BO steps over NAGO's few ordered parameters
    searcher = AxSearcher("nb201", seed=1, objectives=objectives, num_initial=5)
    assert AxSearcher("nb201", metric=["val_acc", "params"], mode=["max", "min"]).objectives == objectives
    run(searcher, 5)
    front = searcher.pareto_front()
    assert front
    observed = list(searcher.outcomes.values())
    for _, point in front:
        assert set(point) == {"val_acc", "params"}
        assert point in observed
        assert not any(
            o["val_acc"] >= point["val_acc"] and o["params"] <= point["params"] and o != point for o in observed
        )
    with pytest.raises(ValueError, match="pareto_front"):
        searcher.best()


def test_outcome_constraints_bound_the_best_arch():
    searcher = AxSearcher("nb201", "val_acc", "max", seed=0, num_initial=8, outcome_constraints=["params <= 12"])
    run(searcher, 8)
    feasible = [v for a, v in searcher.history if score(searcher.space.encode(a))["params"] <= 12]
    assert 0 < len(feasible) < 8
    arch, value = searcher.best()
    assert score(searcher.space.encode(arch))["params"] <= 12 and value == max(feasible)


@pytest.mark.parametrize(
    "result, error", [({"val_acc": math.nan}, False), ({"loss": 1.0}, False), ({"val_acc": 1.0}, True)]
)
def test_failed_trials_are_marked_failed_in_ax_and_the_search_goes_on(result, error):
    searcher = AxSearcher("nb201", metric="val_acc", mode="max", seed=0, num_initial=6)
    run(searcher, 2)
    bad = searcher.space.decode(searcher.suggest("bad"))
    searcher.on_trial_complete("bad", result, error=error)
    assert statuses(searcher)[2] == "FAILED"
    assert searcher.failed == [bad]
    keys = run(searcher, 2, start=3)
    assert bad.key not in keys and len(set(keys)) == 2


def test_save_and_restore_continue_without_repeating(tmp_path):
    path = str(tmp_path / "ax.pkl")
    options = dict(metric="val_acc", mode="max", seed=0, num_initial=4, optimizer_options=CHEAP)
    searcher = AxSearcher("nb201", **options)
    keys = run(searcher, 3)
    pending = searcher.suggest("pending")
    searcher.save(path)

    restored = AxSearcher("nb201", **options)
    restored.restore(path)
    restored.on_trial_complete("pending", score(pending))
    keys += [restored.space.decode(pending).key] + run(restored, 2, start=4)
    assert len(set(keys)) == 6
    assert len(restored.history) == 6
    assert list(statuses(restored).values()).count("COMPLETED") == 6


def test_tune_domains_convert_to_ax_parameters_with_inclusive_bounds():
    params = AxSearcher.convert_search_space(
        {
            "op": tune.choice(["a", "b"]),
            "width": tune.choice([16, 32]),
            "layers": tune.randint(1, 5),
            "batch": tune.qrandint(16, 64, 16),
            "lr": tune.loguniform(1e-4, 1e-1),
        }
    )
    by_name = {p.name: p for p in params}
    assert by_name["op"].parameter_type == "str" and by_name["op"].is_ordered is False
    assert by_name["width"].parameter_type == "int"
    assert by_name["layers"].bounds == (1, 4)
    assert by_name["batch"].bounds == (16, 64) and by_name["batch"].step_size == 16
    assert by_name["lr"].scaling == "log" and by_name["lr"].parameter_type == "float"


def test_unsupported_domain_raises_a_value_error_naming_the_key():
    with pytest.raises(ValueError, match="noise"):
        AxSearcher.convert_search_space({"noise": tune.randn(0.0, 1.0)})
    with pytest.raises(ValueError, match="mode"):
        AxSearcher("nb201", objectives={"val_acc": "up"})


@pytest.fixture(scope="module")
def ray_session():
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def conv_trainable(config: dict) -> None:
    assert get_space("nb201").decode(config)
    tune.report({**score(config), "epoch": config["epochs"]})


def test_tune_run_with_four_samples_completes(ray_session, tmp_path):
    searcher = AxSearcher("nb201", seed=0, num_initial=4)  # Sobol only: Tune's side is under test
    tuner = tune.Tuner(
        conv_trainable,
        param_space={"epochs": 1},
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=4, metric="val_acc", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="ax", verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 4 and not results.errors
    archs = {get_space("nb201").decode(r.config).key for r in results}
    assert len(archs) == 4
    assert results.get_best_result().metrics["val_acc"] == max(r.metrics["val_acc"] for r in results)
