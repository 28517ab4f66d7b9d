"""BOHB on maintained parts: TPE per budget (searchers/bohb.py) paired with HyperBand by ``raynas search``."""
from __future__ import annotations

import pickle

import pytest

from raynas.experiment import SearchSettings, run_search
from searchers import make_searcher
from searchers.bohb import BudgetedHyperBandForBOHB, BudgetedTPE, bohb_scheduler
from search_spaces import get_space

SPACE = get_space("nago")


def _report(model: BudgetedTPE, trial_id: str, budgets: range, value: float) -> None:
    for budget in budgets:
        model.on_trial_result(trial_id, {"val_acc": value, "training_iteration": budget})


def test_model_fits_the_largest_budget_with_enough_results():
    model = BudgetedTPE(SPACE.tune_space(), seed=0, metric="val_acc", mode="max", min_points=3, random_fraction=0.0)
    assert model.model_budget() is None  # nothing yet: random draws
    for i in range(4):
        model.suggest(f"t{i}")
        _report(model, f"t{i}", range(1, 2 if i < 2 else 3), float(i))  # 4 results at budget 1, 2 at budget 2
    assert model.model_budget() == 1
    model.suggest("t4")
    _report(model, "t4", range(1, 3), 4.0)
    assert model.model_budget() == 2 and len(model.observations[2]) == 3
    model.on_trial_complete("t4", error=True)
    assert "t4" not in model.configs and len(model.observations[2]) == 3  # what it reported stays learnt


def test_paused_trials_free_their_slot_and_the_searcher_round_trips():
    searcher = make_searcher("bohb", SPACE, "val_acc", "max", seed=0)
    assert searcher.set_max_concurrency(2)  # Tune's ConcurrencyLimiter then leaves the count to it
    first, second = searcher.suggest("a"), searcher.suggest("b")
    assert first and second and searcher.suggest("c") is None
    searcher.on_pause("a")
    third = searcher.suggest("c")
    assert third and len({str(SPACE.decode(c)) for c in (first, second, third)}) == 3
    searcher.on_unpause("a")
    assert searcher.suggest("d") is None
    for budget, value in ((1, 50.0), (2, 55.0)):  # Tune passes every result, the last one too, to on_trial_result
        searcher.on_trial_result("a", {"val_acc": value, "training_iteration": budget})
    searcher.on_trial_complete("a", {"val_acc": 55.0, "training_iteration": 2})
    clone = pickle.loads(pickle.dumps(searcher))
    assert clone.running == {"b", "c"} and clone.inner.observations[2]
    assert clone.suggest("e") is None  # still two running


def test_scheduler_budgets_run_from_min_t_to_max_t():
    assert BudgetedHyperBandForBOHB(120, 30, 2).budgets() == [30, 60, 120]  # NAGO's protocol
    assert bohb_scheduler(120, reduction_factor=2).budgets() == [30, 60, 120]  # min_t default: max_t / eta**2
    assert bohb_scheduler(27).budgets() == [3, 9, 27]
    assert bohb_scheduler(6).budgets() == [2, 6] and bohb_scheduler(4).budgets() == [4]  # brackets that reach max_t
    with pytest.raises(ValueError, match="grow by reduction_factor"):
        BudgetedHyperBandForBOHB(4, 1, 3)  # Ray's brackets would end at 3 epochs
    with pytest.raises(ValueError, match="min_t"):
        bohb_scheduler(4, min_t=30)
    with pytest.raises(ValueError, match="unknown BOHB scheduler options"):
        bohb_scheduler(4, eta=2)


def test_only_bohb_brings_a_scheduler_and_its_options_are_checked_before_ray():
    settings = SearchSettings(space="nago", searcher="bohb", epochs=8, scheduler_options={"reduction_factor": 2})
    scheduler = settings.scheduler()
    assert isinstance(scheduler, BudgetedHyperBandForBOHB) and scheduler.budgets() == [2, 4, 8]
    assert SearchSettings(space="nago", searcher="tpe").scheduler() is None
    with pytest.raises(ValueError, match="need --searcher bohb"):
        SearchSettings(space="nago", searcher="tpe", scheduler_options={"min_t": 1}).check()
    with pytest.raises(ValueError, match="min_t"):
        SearchSettings(space="nago", searcher="bohb", epochs=2, scheduler_options={"min_t": 3}).check()


def test_bohb_search_stops_trials_at_hyperband_budgets(ray_session, tmp_path):
    settings = SearchSettings(
        space="nago", searcher="bohb", epochs=4, num_samples=4, max_concurrent=2, storage=str(tmp_path), name="bohb",
        scheduler_options={"reduction_factor": 2}, searcher_options={"min_points": 2},
        trainer_options={"build": {"width": 2}, "data_portion": 0.2, "batch_size": 128, "latency_runs": 0},
    )  # fmt: skip
    outcome = run_search(settings)
    import pyarrow.parquet as pq

    table = pq.read_table(outcome.trials_path).to_pylist()
    assert outcome.num_trials == 4 and not outcome.num_errors
    epochs = sorted(row["epoch"] for row in table)
    assert epochs[-1] == 4 and epochs[0] < 4  # brackets 1, 2, 4 epochs: HyperBand stopped some trials early
    assert len({row["arch"] for row in table}) == 4
