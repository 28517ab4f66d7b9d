"""Searchers in a plain Python loop: no repeated canonical architectures, save/restore,
exhaustion, metric/mode handling, bad input."""
from __future__ import annotations

import math

import hyperopt
import numpy as np
import pytest
from ray import tune

from searchers import make_searcher
from search_loop import objective, run
from search_spaces import get_space

SPACE = get_space("nb201")
NAMES = ["random", "rea", "tpe", "nevergrad"]



def make(name: str, seed: int = 0, **kw):
    if name == "nevergrad":
        kw.setdefault("budget", 100)
    return make_searcher(name, SPACE, "val_acc", "max", seed, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_searcher_never_repeats_a_canonical_architecture(name):
    archs = run(make(name), 60)
    assert len(archs) == 60
    assert len({a.key for a in archs}) == 60


@pytest.mark.parametrize("name", NAMES)
def test_save_and_restore_continue_the_search(name, tmp_path):
    first = make(name, seed=3)
    before = run(first, 25)
    path = str(tmp_path / "searcher.pkl")
    first.save(path)
    again = make(name, seed=99)
    again.restore(path)
    after = run(again, 25, start=25)
    assert len({a.key for a in before + after}) == 50
    if name in ("random", "rea"):  # fully deterministic given the saved RNG state
        assert [a.key for a in run(first, 25, start=25)] == [a.key for a in after]


def test_restore_refuses_another_searchers_file(tmp_path):
    path = str(tmp_path / "rea.pkl")
    make("rea").save(path)
    with pytest.raises(ValueError, match="RegularizedEvolution.*not a RandomSearcher"):
        make("random").restore(path)


def test_rea_children_are_mutations_of_the_population():
    searcher = make("rea", population_size=10, sample_size=3)
    run(searcher, 10)
    mutated = 0
    for i in range(10, 30):
        members = [a for a, _ in searcher.population]
        child = SPACE.decode(searcher.suggest(f"t{i}"))
        mutated += any(child in SPACE.neighbors(m) for m in members)
        searcher.on_trial_complete(f"t{i}", {"val_acc": objective(child)})
    assert mutated >= 18  # the rest may be random fallbacks when all children were seen


def test_rea_and_tpe_beat_random_on_a_simple_objective():
    def mean_best(name):
        return np.mean([max(objective(a) for a in run(make(name, seed=s), 40)) for s in range(4)])

    assert mean_best("rea") >= mean_best("random") - 0.5
    assert mean_best("tpe") >= mean_best("random") - 0.5


def test_tpe_models_each_architecture_once_and_learns_the_ones_used_for_its_repeats():
    """A repeat is not fed back as a second observation (TPE would sharpen on the best and
    repeat ever more, its history outgrowing the trials), and the unseen neighbour used
    instead is taught to TPE, so its model holds every finished trial exactly once."""
    searcher = make("tpe", num_initial=5)
    archs = run(searcher, 120)
    trials = searcher.inner._hpopt_trials
    done = [t for t in trials.trials if t["result"].get("status") == "ok"]
    assert len(archs) == 120 and len(done) == 120
    assert sorted(-t["result"]["loss"] for t in done) == sorted(objective(a) for a in archs)
    repeats = [t for t in trials._dynamic_trials if t["state"] == hyperopt.JOB_STATE_ERROR]
    assert repeats  # an objective this simple makes TPE repeat its favourites: told as failed


def test_search_finishes_when_every_class_was_tried():
    searcher = make("random")
    archs = list(SPACE.enumerate())
    keys = list(dict.fromkeys(a.key for a in archs))
    searcher.seen.update(keys[3:])
    got = run(searcher, 10)
    assert len(got) == 3 and {a.key for a in got} == set(keys[:3])


def test_mode_min_prefers_small_values():
    searcher = make_searcher("rea", SPACE, "val_acc", "min", 0)
    run(searcher, 20)
    best_arch, best_value = searcher.best()
    assert best_value == min(v for _, v in searcher.history)


def test_failed_and_nan_trials_are_recorded_not_learned():
    searcher = make("rea")
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.suggest("c")
    searcher.on_trial_complete("a", {"val_acc": math.nan})
    searcher.on_trial_complete("b", {"other": 1.0})
    searcher.on_trial_complete("c", error=True)
    assert len(searcher.failed) == 3 and searcher.history == []


def test_metric_and_mode_can_come_from_tune():
    searcher = make_searcher("rea", SPACE, metric=None, mode=None)
    with pytest.raises(ValueError, match="needs metric and mode"):
        searcher.suggest("x")
    assert searcher.set_search_properties("val_acc", "max", {"epochs": 1, **SPACE.tune_space()})
    assert SPACE.is_valid(SPACE.decode(searcher.suggest("x")))


def test_foreign_search_domains_are_refused():
    searcher = make("rea")
    with pytest.raises(ValueError, match=r"other search domains \['lr'\]"):
        searcher.set_search_properties("val_acc", "max", {"lr": tune.uniform(0.01, 0.1)})


def test_unknown_searcher_and_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown searcher 'bogus'.*'rea'"):
        make_searcher("bogus", SPACE)
    with pytest.raises(ValueError, match="sample_size must be in"):
        make("rea", population_size=3, sample_size=5)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        make_searcher("rea", SPACE, "val_acc", "maximise")
    with pytest.raises(ValueError, match="unknown nevergrad optimizer 'Nope'"):
        make("nevergrad", optimizer="Nope")
