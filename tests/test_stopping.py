"""PredictiveStoppingScheduler: decisions on stand-in trials, then one real Tune run on the
NB201 table where the clearly worse architectures stop at epoch 12."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ray import tune
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import BasicVariantGenerator

from conftest import benchmark_file
from predictors.gp import GPSurrogate
from predictors.stopping import BayesianLinearPredictor, PredictiveStoppingScheduler

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
#: (epoch-12, epoch-200) accuracies of trials that complete first, the final ~ short + 12
COMPLETED = [(70.0, 82.5), (74.0, 85.5), (78.0, 90.0), (80.0, 91.5), (83.0, 95.5), (76.0, 88.0)]


def trial(name: str, **config) -> SimpleNamespace:
    return SimpleNamespace(trial_id=name, config=config)


def scheduler(**kw) -> PredictiveStoppingScheduler:
    kw = {"time_attr": "epoch", "metric": "val_acc", "mode": "max", "grace_period": 12, "max_t": 200, **kw}
    sched = PredictiveStoppingScheduler(**kw)
    sched.on_trial_add(None, trial("probe"))
    return sched


def complete(sched, curves, metric: str = "val_acc", value=lambda acc: acc) -> None:
    """Run each (short, final) pair to epoch 200 through ``sched`` (as Tune does: result, then complete)."""
    for i, (short, final) in enumerate(curves):
        t = trial(f"done{len(sched._finals)}_{i}")
        assert sched.on_trial_result(None, t, {"epoch": 12, metric: value(short)}) == CONTINUE
        last = {"epoch": 200, metric: value(final), "done": True}
        assert sched.on_trial_result(None, t, last) == CONTINUE
        sched.on_trial_complete(None, t, last)


@pytest.mark.parametrize("predictor", [None, GPSurrogate(max_train=None)], ids=["bayes-linear", "gp"])
def test_stops_a_clearly_bad_trial_after_grace_and_keeps_a_good_one(predictor):
    sched = scheduler(predictor=predictor)
    complete(sched, COMPLETED)
    bad, good = trial("bad"), trial("good")
    assert sched.on_trial_result(None, bad, {"epoch": 12, "val_acc": 50.0}) == STOP
    assert sched.on_trial_result(None, good, {"epoch": 12, "val_acc": 82.0}) == CONTINUE
    sched.on_trial_complete(None, bad, {"epoch": 12, "val_acc": 50.0})
    assert "bad" not in sched._finals and "num_stopped=1" in sched.debug_string()


def test_never_stops_before_grace_nor_on_a_last_report():
    sched = scheduler()
    complete(sched, COMPLETED)
    bad = trial("bad")
    assert all(sched.on_trial_result(None, bad, {"epoch": e, "val_acc": 20.0}) == CONTINUE for e in range(1, 12))
    assert sched.on_trial_result(None, trial("short"), {"epoch": 12, "val_acc": 20.0, "done": True}) == CONTINUE
    assert sched.on_trial_result(None, bad, {"epoch": 12, "val_acc": 20.0}) == STOP


def test_no_stopping_before_min_completed():
    sched = scheduler(min_completed=5)
    complete(sched, COMPLETED[:4])
    assert sched.on_trial_result(None, trial("early"), {"epoch": 12, "val_acc": 40.0}) == CONTINUE
    complete(sched, COMPLETED[4:5])
    assert sched.on_trial_result(None, trial("late"), {"epoch": 12, "val_acc": 40.0}) == STOP


def test_mode_min_stops_a_clearly_bad_loss():
    loss = lambda acc: (100 - acc) / 10  # noqa: E731
    sched = scheduler(metric="val_loss", mode="min")
    complete(sched, COMPLETED, metric="val_loss", value=loss)
    assert sched.on_trial_result(None, trial("bad"), {"epoch": 12, "val_loss": loss(50.0)}) == STOP
    assert sched.on_trial_result(None, trial("good"), {"epoch": 12, "val_loss": loss(82.0)}) == CONTINUE
    assert "top-5 val_loss to reach: 1.45" in sched.debug_string()  # the 5th lowest final loss


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"mode": "maximize"}, "mode must be one of \\['min', 'max'\\]"),
        ({"grace_period": 0}, "grace_period must be > 0"),
        ({"milestone_factor": 1}, "milestone_factor must be > 1"),
        ({"max_t": 5, "grace_period": 12}, "max_t must be > grace_period"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"keep_fraction": 1.0}, "keep_fraction must be in \\[0, 1\\)"),
        ({"min_completed": 1}, "min_completed must be an integer >= 2"),
        ({"predictor": object()}, "predictor must have fit"),
    ],
)
def test_bad_arguments_are_named(kw, words):
    with pytest.raises(ValueError, match=words):
        PredictiveStoppingScheduler(**kw)


def test_metric_and_mode_come_from_tune_or_the_error_says_how():
    sched = PredictiveStoppingScheduler(time_attr="epoch")
    with pytest.raises(ValueError, match="no metric .* pass metric= and mode="):
        sched.on_trial_add(None, trial("t"))
    with pytest.raises(ValueError, match="mode must be one of"):
        sched.set_search_properties("val_acc", "best")
    assert sched.set_search_properties("val_acc", "max")
    assert not sched.set_search_properties("test_acc", "min")  # already set: Tune's own contract
    sched.on_trial_add(None, trial("t"))
    assert (sched.metric, sched._mode) == ("val_acc", "max")


class Pessimist:
    """A plugged predictor: records what it is fitted on and predicts the worst for everyone."""

    def fit(self, X, y):
        self.X_ = np.asarray(X)
        return self

    def predict(self, X):
        Pessimist.calls.append(np.asarray(X))
        return np.full(len(X), -1e9), np.zeros(len(X))


def test_plugged_predictor_sees_curve_summary_and_arch_features_and_top_fraction_survives():
    Pessimist.calls = []
    sched = scheduler(predictor=Pessimist(), features=lambda config: [config["width"], 1.0], keep_fraction=0.2)
    for i, (short, final) in enumerate(COMPLETED[:5]):
        t = trial(f"c{i}", width=i)
        assert sched.on_trial_result(None, t, {"epoch": 12, "val_acc": short}) == CONTINUE
        sched.on_trial_complete(None, t, {"epoch": 200, "val_acc": final})
    assert sched.on_trial_result(None, trial("best", width=9), {"epoch": 12, "val_acc": 90.0}) == CONTINUE
    assert sched.on_trial_result(None, trial("middling", width=9), {"epoch": 12, "val_acc": 79.0}) == STOP
    assert sched._models[12.0][1].X_.shape == (5, 4)  # [last, best] + two features, one row per completed trial
    np.testing.assert_allclose(Pessimist.calls[-1], [[79.0, 79.0, 9.0, 1.0]])


class Counting(BayesianLinearPredictor):
    """The default predictor, counting its predictions."""

    calls = 0

    def predict(self, X):
        Counting.calls += 1
        return super().predict(X)


def test_per_epoch_curves_are_judged_once_per_milestone():
    Counting.calls = 0
    sched = scheduler(predictor=Counting(), grace_period=2, milestone_factor=3, max_t=None, z=1e9, keep_fraction=0)
    for i in range(5):
        t = trial(f"c{i}")
        for epoch in range(1, 21):
            sched.on_trial_result(None, t, {"epoch": epoch, "val_acc": 50 + i * epoch / 10, "done": epoch == 20})
        sched.on_trial_complete(None, t, {"epoch": 20, "val_acc": 50 + 2 * i, "done": True})
    assert Counting.calls == 0  # below min_completed nothing is predicted
    rising = trial("rising")
    assert [sched.on_trial_result(None, rising, {"epoch": e, "val_acc": 60 + e}) for e in range(1, 21)] == [CONTINUE] * 20
    assert Counting.calls == 3 and sorted(sched._models) == [2.0, 6.0, 18.0]
    assert [m for m, recorded in sched._recorded.items() if "rising" in recorded] == [2.0, 6.0, 18.0]


def test_save_and_restore_carry_the_decisions_on(tmp_path):
    sched = scheduler()
    complete(sched, COMPLETED)
    sched.save(str(tmp_path / "scheduler.pkl"))
    again = PredictiveStoppingScheduler()
    again.restore(str(tmp_path / "scheduler.pkl"))
    assert again._finals == sched._finals and again.metric == "val_acc"
    assert again.on_trial_result(None, trial("bad"), {"epoch": 12, "val_acc": 50.0}) == STOP


# ---------------------------------------------------------------------- a real Tune run
def test_tune_run_on_nb201_stops_bad_trials_at_epoch_12(ray_session, tmp_path):
    from raynas.benchmarks import TabularBenchmark
    from raynas.trainables import BenchmarkTrainable

    table = TabularBenchmark.from_parquet(benchmark_file("nb201_all.parquet"), "nb201", "cifar10")
    final, short = table.column("valid"), table.column("valid", 12)
    order = np.argsort(final)
    good = [order[int(q * (len(order) - 1))] for q in (0.5, 0.6, 0.7, 0.8, 0.9, 0.99)]
    bad = [r for r in order[: len(order) // 5] if 45 < short[r] < 60][:6]
    points = [{"space": "nb201", **table.space.encode(table.archs[r])} for r in good + bad]
    tuner = tune.Tuner(
        tune.with_parameters(BenchmarkTrainable, benchmark=table),
        param_space={"space": "nb201", **table.space.tune_space()},
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=points, max_concurrent=1),
            scheduler=PredictiveStoppingScheduler(time_attr="epoch", grace_period=12, max_t=200),
            metric="val_acc",
            mode="max",
            num_samples=len(points),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="stopping", verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 12 and results.num_errors == 0
    epochs = {r.metrics["arch"]: r.metrics["epoch"] for r in results}
    assert [epochs[str(table.archs[r])] for r in good] == [200] * 6
    assert [epochs[str(table.archs[r])] for r in bad] == [12] * 6
    best = results.get_best_result(scope="last")
    assert best.metrics["arch"] == str(table.archs[good[-1]]) and best.metrics["test_acc"] > 90
