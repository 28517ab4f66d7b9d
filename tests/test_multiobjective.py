"""Multi-objective search: Pareto fronts, hypervolume, Ax over NAGO, ``raynas search --objectives``."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from raynas.cli import main as cli_main
from raynas.experiment import SearchSettings
from raynas.results import hypervolume, pareto_mask, pareto_table
from search_spaces import get_space
from searchers.ax_searcher import AxSearcher

SPACE = get_space("nago")
CHEAP = {"num_restarts": 2, "raw_samples": 64}
OBJECTIVES = {"val_acc": "max", "params": "min"}


def fake_result(config: dict) -> dict[str, float]:
    """Bigger generators score higher and cost more; rewiring (top_p) costs accuracy."""
    spec = SPACE.decode(config).spec
    size = spec.top_nodes * spec.mid_nodes * spec.bot_nodes
    return {"val_acc": 100.0 - 300.0 / (3.0 + size) - 5.0 * spec.top_p, "params": float(size)}


def test_pareto_mask_keeps_exactly_the_non_dominated_rows():
    points = np.array([[90, 10], [95, 20], [80, 5], [85, 15], [95, 20], [np.nan, 1], [70, 30]])
    assert pareto_mask(points, ["max", "min"]).tolist() == [True, True, True, False, True, False, False]
    assert pareto_mask(points[:, ::-1], ["min", "max"]).tolist() == [True, True, True, False, True, False, False]


def test_hypervolume_matches_botorch():
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(50, 100, 30), rng.uniform(1e3, 1e5, 30)]  # (val_acc max, params min)
    reference = (50.0, 1e5)
    ours = hypervolume(points, ["max", "min"], reference)
    front = torch.tensor(points[pareto_mask(points, ["max", "min"])] * [1, -1], dtype=torch.double)
    theirs = Hypervolume(torch.tensor([reference[0], -reference[1]], dtype=torch.double)).compute(front)
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert hypervolume([[60.0, 2e4]], ["max", "min"], reference) == pytest.approx(10 * 8e4)
    assert hypervolume([[40.0, 2e4]], ["max", "min"], reference) == 0.0  # worse than the reference


def test_pareto_table_sorts_the_front_best_first():
    table = pa.table({"arch": ["a", "b", "c", "d"], "val_acc": [90.0, 95.0, 80.0, None], "params": [10, 20, 5, 1]})
    front = pareto_table(table, OBJECTIVES)
    assert front.column("arch").to_pylist() == ["b", "a", "c"]
    with pytest.raises(ValueError, match="flops"):
        pareto_table(table, {"val_acc": "max", "flops": "min"})


def test_ax_multi_objective_over_nago_returns_a_non_dominated_front():
    thresholds = ["val_acc >= 0", "params <= 2000"]  # the reference point; bounds a minimised objective from above
    searcher = AxSearcher(
        "nago", seed=0, objectives=OBJECTIVES, outcome_constraints=thresholds, num_initial=4, optimizer_options=CHEAP
    )
    observed = []
    for i in range(6):
        config = searcher.suggest(str(i))
        observed.append(fake_result(config))
        searcher.on_trial_complete(str(i), observed[-1])
    front = searcher.pareto_front()
    assert front and all(arch.space == "nago" for arch, _ in front)
    for arch, point in front:
        assert point == pytest.approx(fake_result(SPACE.encode(arch)))
        assert not any(
            o["val_acc"] >= point["val_acc"] and o["params"] <= point["params"] and o != point for o in observed
        )


def test_search_settings_check_the_objectives():
    with pytest.raises(ValueError, match="objectives must name two or more metrics"):
        SearchSettings(objectives={"val_acc": "max"}).check()
    with pytest.raises(ValueError, match="first objective"):
        SearchSettings(objectives={"params": "min", "val_acc": "max"}).check()
    SearchSettings(objectives=dict(OBJECTIVES)).check()


@pytest.mark.parametrize("searcher, alone", [("rea", True), ("bohb", True), ("ax", False)])
def test_a_searcher_of_one_objective_says_the_front_comes_from_its_trials(capsys, searcher, alone):
    from raynas.experiment import _note_single_objective

    _note_single_objective(SearchSettings(space="nago", searcher=searcher, objectives=dict(OBJECTIVES)).check())
    said = f"raynas: {searcher} searches val_acc alone; the Pareto front of val_acc, params is drawn from its trials"
    assert (said in capsys.readouterr().err) == alone


def test_cli_objectives_print_and_write_the_pareto_front(ray_session, tmp_path, capsys):
    code = cli_main([
        "search", "--space", "nago", "--searcher", "ax", "--objectives", "val_acc:max,params:min",
        "--dataset", "synthetic:64", "--epochs", "1", "--num-samples", "4", "--storage", str(tmp_path),
        "--name", "mo", "--set", 'build={"width": 1}', "--searcher-opt", "num_initial=4",
    ])  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    assert "Pareto front (" in out and "val_acc" in out and "top=ws(" in out
    assert "searches val_acc alone" not in err  # ax searches every objective
    trials = pq.read_table(tmp_path / "mo" / "trials.parquet").to_pylist()
    front = pq.read_table(tmp_path / "mo" / "pareto.parquet").to_pylist()
    assert len(trials) == 4 and 1 <= len(front) <= 4
    assert len({r["params"] for r in trials}) > 1  # a fixed width lets the size follow the generator
    for row in front:
        assert not any(t["val_acc"] >= row["val_acc"] and t["params"] < row["params"] for t in trials)
    assert (tmp_path / "mo" / "pareto_front.png").stat().st_size > 10_000


def test_cli_rejects_malformed_objectives(capsys):
    assert cli_main(["search", "--objectives", "val_acc:up"]) == 2
    assert "--objectives takes METRIC:max or METRIC:min" in capsys.readouterr().err
