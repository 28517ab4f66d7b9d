"""The contract every registered searcher keeps, the one Ray Tune's own searcher tests hold
theirs to: invalid results (NaN, +-inf, no metric, an error) and stray results do not stop
or corrupt the search, metric and mode may come late from Tune, ``mode="min"`` works,
``save``/``restore``, ``save_to_dir``/``restore_from_dir``, pickling and deep copies continue
without repeats, bad arguments are ``ValueError``s, and a real ``Tuner`` runs it under
``ConcurrencyLimiter`` and ``Repeater``.

Every ``suggest`` runs under a time bound (a daemon thread), so a searcher that hangs fails
its test instead of blocking the suite.  A searcher over a finite list (``given``) may answer
``FINISHED``; once it has, it must keep answering it.
"""
from __future__ import annotations

import copy
import hashlib
import math
import pickle
import threading

import pytest
from ray import tune
from ray.tune.search import ConcurrencyLimiter, Repeater

from predictors.embeddings import ArchEmbeddings
from search_loop import objective
from search_spaces import get_space
from searchers import FINISHED, available_searchers, make_searcher

SPACE = get_space("nb201")
#: every registered searcher, and presets that are another class (``name#preset``)
NAMES = [*available_searchers(), "embedding-gp#paper"]
POOL = ArchEmbeddings.one_hot(SPACE, list(dict.fromkeys(SPACE.sample_unique(200, rng=0))))
GIVEN = [str(a) for a in SPACE.sample_unique(40, 1)]
#: seconds one ``suggest`` may take before the searcher counts as hung
BOUND_S = 30.0
INVALID = [{"val_acc": math.nan}, {"val_acc": math.inf}, {"val_acc": -math.inf}, {"params": 1}, None]


def options(name: str) -> dict:
    """What each searcher needs to be made, sized so that every test stays a few seconds."""
    if name == "embedding-gp#paper":  # the GP from the second result on
        return {"embeddings": POOL, "preset": "paper", "num_initial": 2}
    if name == "given":
        return {"archs": GIVEN}
    if name == "ax":  # Sobol for the steps below: Ax's model fits are the slow part
        return {"num_initial": 8, "optimizer_options": {"num_restarts": 2, "raw_samples": 32}}
    if name in ("embedding-gp", "embedding-ngopt", "embedding-tpe", "embedding-ax", "predictor-rea"):
        return {"embeddings": POOL, **({"budget": 50} if name == "embedding-ngopt" else {})}
    if name == "nevergrad":
        return {"budget": 50}
    return {}


def make(name: str, metric: str | None = "val_acc", mode: str | None = "max", seed: int = 0):
    return make_searcher(name.split("#")[0], SPACE, metric, mode, seed, **options(name))


def suggest(searcher, trial_id: str, method=None):
    """``searcher.suggest(trial_id)`` (or ``method(searcher, trial_id)``), failing the test if it
    takes over :data:`BOUND_S`."""
    out: dict = {}

    def call() -> None:
        try:
            out["config"] = method(searcher, trial_id) if method else searcher.suggest(trial_id)
        except BaseException as err:  # re-raised in the test's thread
            out["error"] = err

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    if thread.is_alive():
        pytest.fail(f"{type(searcher).__name__}.suggest({trial_id!r}) did not return within {BOUND_S} s")
    if "error" in out:
        raise out["error"]
    return out["config"]


class BoundedLimiter(ConcurrencyLimiter):
    """Tune's ``ConcurrencyLimiter`` whose ``suggest`` is bounded, so that a hang inside a
    ``Tuner`` fails the test too."""

    def suggest(self, trial_id: str):
        return suggest(self, trial_id, ConcurrencyLimiter.suggest)


class Driver:
    """Drives a searcher through the API, checking that it never proposes an architecture
    twice and that ``FINISHED`` is final."""

    def __init__(self, searcher, seen: set[str] | None = None):
        self.searcher, self.keys, self.finished = searcher, set(seen or ()), False

    def start(self, trial_id: str):
        config = suggest(self.searcher, trial_id)
        assert not (self.finished and config != FINISHED), "a suggestion after FINISHED"
        if config == FINISHED:
            self.finished = True
            return None
        assert isinstance(config, dict), f"suggest returned {config!r}"
        arch = SPACE.decode(config)
        assert arch.key not in self.keys, f"{arch} proposed twice"
        self.keys.add(arch.key)
        return arch

    def run(self, steps: int, start: int = 0) -> int:
        """``steps`` trials, each completed with its objective; how many ran."""
        for i in range(start, start + steps):
            arch = self.start(f"t{i}")
            if arch is None:
                return i - start
            self.searcher.on_trial_complete(f"t{i}", {"val_acc": objective(arch), "params": 1})
        return steps


def complete(searcher, trial_id: str, invalid: dict | None) -> None:
    if invalid is None:
        searcher.on_trial_complete(trial_id, error=True)
    else:
        searcher.on_trial_complete(trial_id, invalid)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_results_neither_stop_nor_repeat_the_search(name):
    searcher, driver = make(name), None
    driver = Driver(searcher)
    driver.run(2)
    held = driver.start("held")  # a trial still out while others fail: the sequential-optimiser hang
    assert held is not None
    for i, invalid in enumerate(INVALID):
        assert driver.start(f"bad{i}") is not None
        complete(searcher, f"bad{i}", invalid)
    assert driver.start("after") is not None
    searcher.on_trial_complete("held", {"val_acc": objective(held)})
    searcher.on_trial_complete("after", {"val_acc": math.nan})
    assert driver.run(3, start=10) == 3
    assert searcher.best() is not None and all(math.isfinite(v) for _, v in searcher.history)
    assert len(searcher.failed) == len(INVALID) + 1


@pytest.mark.parametrize("name", NAMES)
def test_stray_results_are_ignored(name):
    searcher = make(name)
    driver = Driver(searcher)
    driver.run(3)
    searcher.on_trial_result("t0", {"val_acc": 1e9})  # after its completion
    searcher.on_trial_complete("t0", {"val_acc": 1e9})
    searcher.on_trial_result("nobody", {"val_acc": 1e9})  # an id never suggested
    searcher.on_trial_complete("nobody", {"val_acc": 1e9})
    searcher.on_trial_complete("nobody-either", error=True)
    assert len(searcher.history) == 3 and not searcher.failed
    assert max(v for _, v in searcher.history) < 1e9
    assert driver.run(2, start=3) == 2


@pytest.mark.parametrize("name", NAMES)
def test_metric_and_mode_may_come_late_from_tune(name):
    searcher = make(name, metric=None, mode=None)
    assert searcher.set_search_properties("val_acc", "max", {}) is True
    assert Driver(searcher).run(4) == 4
    assert searcher.metric == "val_acc" and searcher.mode == "max"


@pytest.mark.parametrize("name", NAMES)
def test_mode_min_keeps_the_smallest_value_as_best(name):
    searcher = make(name, mode="min")
    assert Driver(searcher).run(5) == 5
    assert searcher.best()[1] == min(v for _, v in searcher.history)


@pytest.mark.parametrize("name", NAMES)
def test_save_and_restore_continue_without_repeats(name, tmp_path):
    first = make(name, seed=3)
    driver = Driver(first)
    driver.run(4)
    first.save(str(tmp_path / "searcher.pkl"))
    again = make(name, seed=11)
    again.restore(str(tmp_path / "searcher.pkl"))
    assert Driver(again, driver.keys).run(3, start=4) == 3
    first.save_to_dir(str(tmp_path / "dir"))
    other = make(name, seed=12)
    other.restore_from_dir(str(tmp_path / "dir"))
    assert Driver(other, driver.keys).run(3, start=4) == 3


@pytest.mark.parametrize("name", NAMES)
def test_pickled_and_deep_copied_searchers_continue_without_repeats(name):
    searcher = make(name)
    driver = Driver(searcher)
    driver.run(3)
    held = driver.start("held")
    for twin in (pickle.loads(pickle.dumps(searcher)), copy.deepcopy(searcher)):
        twin.on_trial_complete("held", {"val_acc": objective(held)})
        assert Driver(twin, driver.keys).run(3, start=3) == 3
    searcher.on_trial_complete("held", {"val_acc": objective(held)})
    assert driver.run(2, start=3) == 2


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_are_value_errors(name):
    with pytest.raises(ValueError, match="mode must be"):
        make(name, mode="maximise")
    with pytest.raises(ValueError):
        make_searcher(name.split("#")[0], SPACE, "val_acc", "max", 0, no_such_option=1, **options(name))
    searcher = make(name)
    with pytest.raises(ValueError, match="other search domains"):
        searcher.set_search_properties("val_acc", "max", {"lr": tune.uniform(0.01, 0.1)})


def test_a_finite_searcher_finishes_and_stays_finished():
    searcher = make_searcher("given", SPACE, "val_acc", "max", 0, archs=GIVEN[:3])
    driver = Driver(searcher)
    assert driver.run(5) == 3
    assert suggest(searcher, "later") == FINISHED


def sometimes_invalid(config: dict) -> None:
    """A tiny function trainable: a group's second repeat reports NaN; its first reports inf for
    about half the architectures (the searcher is then told inf, the nanmean), else the objective."""
    arch = SPACE.decode(config)
    if config.get("__trial_index__", 0) == 1:
        value = math.nan
    elif int(hashlib.sha1(arch.key.encode()).hexdigest(), 16) % 2:
        value = math.inf
    else:
        value = objective(arch)
    tune.report({"val_acc": value, "arch": str(arch)})


@pytest.mark.parametrize("name", NAMES)
def test_a_tuner_runs_it_under_a_concurrency_limiter_and_a_repeater(name, ray_session, tmp_path):
    """Metric and mode come from ``TuneConfig``; half the trials or more report NaN or inf.

    Tune's ``Repeater`` asks the searcher once per group of ``repeat`` trials, runs that config
    ``repeat`` times (adding a ``__trial_index__`` key) and tells the searcher the group's
    ``nanmean`` under the first trial's id.  The repeats are of one evaluation by design (to
    average noisy training), so here each architecture runs exactly ``repeat`` times, different
    groups never share one, and the searcher sees one result per group (a failure if all were
    NaN); it is never asked for an architecture it proposed before."""
    searcher = make(name, metric=None, mode=None)
    search_alg = BoundedLimiter(Repeater(searcher, repeat=2), max_concurrent=2)
    results = tune.Tuner(
        sometimes_invalid,
        param_space={"epochs": 1},
        tune_config=tune.TuneConfig(search_alg=search_alg, metric="val_acc", mode="max", num_samples=6, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
    ).fit()
    keys = [SPACE.parse(r.metrics["arch"]).key for r in results]
    assert len(results) == 6 and results.num_errors == 0
    assert sorted({keys.count(k) for k in keys}) == [2] and len(set(keys)) == 3
    assert len(searcher.history) + len(searcher.failed) == 3 and not searcher.pending
    assert sum(not math.isfinite(r.metrics["val_acc"]) for r in results) >= 3
