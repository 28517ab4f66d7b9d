"""PredictorEvolutionSearcher: REA children picked by a predictor (default: a GP on one-hot
configs), with any predictor object, any space, save/restore and named bad options."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.embeddings import ArchEmbeddings
from searchers import make_searcher
from predictors.embedding_gp import EmbeddingGPPredictor
from searchers.predictor_evolution import PredictorEvolutionSearcher
from search_loop import objective, run
from search_spaces import get_space

SPACE = get_space("nb201")


class Recorder:
    """A predictor that knows the test objective and records every call."""

    def __init__(self, std: float = 0.0):
        self.std = std
        self.fits: list[tuple[list, np.ndarray]] = []
        self.predictions: list[tuple[list, np.ndarray]] = []

    def fit(self, archs, y):
        self.fits.append((list(archs), np.asarray(y)))
        return self

    def predict(self, archs):
        mean = np.array([objective(a) for a in archs], dtype=float)
        self.predictions.append((list(archs), mean))
        return mean, np.full(len(mean), self.std)


def make(seed: int = 0, mode: str = "max", **kw):
    return PredictorEvolutionSearcher(SPACE, "val_acc", mode, seed, **kw)


def test_never_suggests_an_evaluated_or_pending_architecture():
    searcher = make(predictor=Recorder(), num_candidates=8)
    warm = SPACE.sample_unique(5, rng=1)
    for arch in warm:
        searcher.add_evaluated_point(SPACE.encode(arch), objective(arch))
    archs = run(searcher, 60)
    keys = [a.key for a in warm + archs]
    assert len(archs) == 60 and len(set(keys)) == len(keys)


def test_the_predicted_best_candidate_is_evaluated_and_refits_follow_refit_every():
    predictor = Recorder()
    searcher = make(predictor=predictor, num_candidates=8, num_initial=10, refit_every=3)
    archs = run(searcher, 30)
    assert len(predictor.predictions) == 20  # one per step after the 10 random ones
    for (candidates, mean), chosen in zip(predictor.predictions, archs[10:]):
        assert chosen == candidates[int(np.argmax(mean))]
    sizes = [len(archs) for archs, _ in predictor.fits]
    assert sizes == list(range(10, 30, 3))
    fitted_archs, y = predictor.fits[-1]
    assert np.allclose(y, [objective(a) for a in fitted_archs])


def test_candidates_are_unseen_mutations_of_the_population():
    predictor = Recorder()
    searcher = make(predictor=predictor, num_candidates=6)
    run(searcher, 10)
    for i in range(10, 25):
        members = [a for a, _ in searcher.population]
        searcher.suggest(f"t{i}")
        candidates, _ = predictor.predictions[-1]
        assert len(candidates) == len(set(candidates)) >= 2
        assert all(any(c in SPACE.neighbors(m) for m in members) for c in candidates)
        assert sum(not searcher.is_unseen(c) for c in candidates) == 1  # only the chosen one
        chosen = searcher.pending[f"t{i}"]
        searcher.on_trial_complete(f"t{i}", {"val_acc": objective(chosen)})


def test_mode_min_picks_the_lowest_prediction_and_beta_rewards_uncertainty():
    low = Recorder()
    chosen = run(make(mode="min", predictor=low, num_candidates=8), 15)[10:]
    assert [candidates[int(np.argmin(mean))] for candidates, mean in low.predictions] == chosen

    class Uncertain(Recorder):
        def predict(self, archs):
            mean, _ = super().predict(archs)
            return mean, -mean  # the worse the mean, the larger the std

    greedy, explorer = Uncertain(), Uncertain()
    chosen_greedy = run(make(predictor=greedy, num_candidates=8, beta=0.0), 15)[10:]
    chosen_explorer = run(make(predictor=explorer, num_candidates=8, beta=10.0), 15)[10:]
    assert objective(chosen_greedy[0]) == max(greedy.predictions[0][1])
    assert objective(chosen_explorer[0]) == min(explorer.predictions[0][1])


def test_default_gp_finds_better_architectures_than_random():
    def mean_best(name, seeds, **kw):
        return np.mean([max(map(objective, run(make_searcher(name, SPACE, "val_acc", "max", s, **kw), 30))) for s in seeds])

    guided = mean_best("predictor-rea", range(2), num_candidates=10)
    assert guided >= mean_best("random", range(4)) + 1.0
    assert guided >= 10.0  # the optimum is 12: six 3x3 convolutions


def test_save_and_restore_continue_without_repeats(tmp_path):
    first = make(seed=3, num_candidates=8, refit_every=2)
    before = run(first, 16)
    path = str(tmp_path / "searcher.pkl")
    first.save(path)
    again = make(seed=99, num_candidates=8, refit_every=2)
    again.restore(path)
    after = run(again, 8, start=16)
    assert len({a.key for a in before + after}) == 24


def test_restored_searcher_refits_its_predictor_on_the_saved_history(tmp_path):
    first = make(seed=3, predictor=Recorder(), num_candidates=8)
    run(first, 20)
    path = str(tmp_path / "searcher.pkl")
    first.save(path)
    predictor = Recorder()
    again = make(seed=7, predictor=predictor, num_candidates=8)
    again.restore(path)
    after = run(again, 10, start=20)
    assert len(predictor.fits[0][0]) == 20  # the whole restored history, before the first pick
    assert [a.key for a in run(first, 10, start=20)] == [a.key for a in after]


def test_darts_space_with_the_default_gp():
    darts = get_space("darts")
    searcher = PredictorEvolutionSearcher(darts, "val_acc", "max", 0, num_candidates=6, num_initial=6, population_size=6)
    seen = set()
    for i in range(12):
        arch = darts.decode(searcher.suggest(str(i)))
        assert arch.key not in seen
        seen.add(arch.key)
        searcher.on_trial_complete(str(i), {"val_acc": float(str(arch).count("sep_conv"))})
    assert len(searcher.predictor.gp_.model_.train_targets) >= 6  # fitted on darts results


def test_embedding_table_bounds_the_candidates():
    pool = list(dict.fromkeys(SPACE.sample_unique(400, rng=0)))
    table = ArchEmbeddings.one_hot(SPACE, pool)
    searcher = make_searcher("predictor-rea", SPACE, "val_acc", "max", 0, embeddings=table, num_candidates=8)
    archs = run(searcher, 15)
    assert len(archs) == 15 and all(a in table for a in archs)
    assert isinstance(searcher.predictor, EmbeddingGPPredictor) and hasattr(searcher.predictor, "gp_")


def test_one_hot_encoding_gives_equivalent_archs_one_vector():
    archs = SPACE.sample_unique(30, rng=2)
    twins = [SPACE.canonical(a) for a in archs]
    encode = EmbeddingGPPredictor(SPACE).vectors
    assert np.array_equal(encode(archs), encode(twins))
    assert encode(archs).shape == (30, 6 * 5)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="num_candidates must be an integer >= 1, got 0"):
        make(num_candidates=0)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        make(beta=-1.0)
    with pytest.raises(ValueError, match="refit_every must be an integer >= 1"):
        make(refit_every=0)
    with pytest.raises(ValueError, match="default GP needs num_initial >= 2"):
        make(num_initial=1)
    with pytest.raises(ValueError, match=r"predictor must have fit\(archs, y\) and predict"):
        make(predictor=object())
    with pytest.raises(ValueError, match="either predictor= or embeddings="):
        make(predictor=Recorder(), embeddings=ArchEmbeddings.one_hot(SPACE, SPACE.sample_unique(3, rng=0)))
    with pytest.raises(ValueError, match="embeddings are of space 'darts'"):
        darts = get_space("darts")
        make(embeddings=ArchEmbeddings.one_hot(darts, [darts.sample(0)]))
    with pytest.raises(ValueError, match="sample_size must be in"):
        make(population_size=3, sample_size=5)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        make(mode="maximise")


def test_a_zero_cost_proxy_plugs_in_as_the_predictor():
    from predictors.zero_cost import ZeroCostPredictor

    proxy = ZeroCostPredictor("params", space=SPACE, build={"C": 8, "N": 1})
    searcher = make(predictor=proxy, num_candidates=4, num_initial=0, population_size=4, sample_size=2)
    archs = run(searcher, 8)
    assert len({a.key for a in archs}) == 8


class _Knows:
    """A predictor fitted elsewhere: ``predict`` only (it is never refitted)."""

    def __init__(self, score):
        self.score, self.calls = score, 0

    def predict(self, archs):
        self.calls += 1
        mean = np.array([self.score(a) for a in archs], dtype=float)
        return mean, np.zeros_like(mean)


def test_a_transferred_predictor_is_kept_as_the_gps_prior_mean():
    """Refits on the search's results learn the prior's residual instead of replacing it: with
    5 labels a GP around a right prior ranks unseen archs almost as the prior does, one without
    it cannot; with 20, a prior that ranks nothing is weighted away (too few labels to judge
    it, it is trusted)."""
    from scipy.stats import spearmanr

    archs = SPACE.sample_unique(200, 1)
    y = np.array([objective(a) for a in archs])
    rng = np.random.default_rng(0)
    noise = {a.key: rng.normal() for a in archs}

    def srcc(labels, **kw):
        gp = EmbeddingGPPredictor(SPACE, dim=None, warp="none", **kw).fit(archs[:labels], y[:labels])
        return spearmanr(gp.predict(archs[labels:])[0], y[labels:]).statistic, gp

    guided, gp = srcc(5, prior=_Knows(lambda a: objective(a) ** 2))
    assert guided > 0.9 > srcc(5)[0] + 0.3 and gp.prior_mean_[1] > 0
    misled, bad = srcc(20, prior=_Knows(lambda a: noise[a.key]))
    assert abs(misled - srcc(20)[0]) < 0.1 and bad.prior_mean_[2] < 0.5


def test_predictor_rea_takes_a_saved_predictor_directory_as_its_prior(tmp_path):
    """``predictor=DIR`` (what the command line gives) loads the saved CG predictor and keeps it
    as the prior of the default GP; it is asked about each architecture once."""
    from predictors.cg import CGPredictor

    train = SPACE.sample_unique(24, 2)
    small = {"hidden": 16, "layers": 1, "embed_dim": 16, "n_heads": 1, "batch_size": 8, "use_ray": False}
    CGPredictor(epochs=2, seed=0, **small).fit(train, [objective(a) for a in train]).save(tmp_path / "cg")
    searcher = make_searcher("predictor-rea", SPACE, "val_acc", "max", 0, predictor=str(tmp_path / "cg"), num_candidates=5)
    assert isinstance(searcher.predictor, EmbeddingGPPredictor) and searcher.predictor.prior is not None
    archs = run(searcher, 16)
    assert len({a.key for a in archs}) == 16 and searcher.predictor.prior_mean_ != (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="predictor= or prior=, not both"):
        make_searcher("predictor-rea", SPACE, predictor=str(tmp_path / "cg"), prior={})
    with pytest.raises(ValueError, match="either predictor= or embeddings= / prior="):
        make(predictor=Recorder(), prior={})


def test_a_parameter_budget_holds_for_every_proposal_and_an_impossible_one_fails_early():
    """``max_params`` counts the network the trials build (the ``model`` fact: classes, image
    shape, build options); REA and predictor-rea propose nothing above it."""
    from searchers.constraints import ParamBudget

    model = {"num_classes": 10, "in_shape": (1, 8, 8), "build": {"C": 4, "N": 1}}
    budget = ParamBudget(SPACE, 8000, model)
    arch = SPACE.sample(3)
    built = SPACE.build(SPACE.canonical(arch), num_classes=10, in_shape=(1, 8, 8), C=4, N=1)
    assert budget.count(arch) == sum(p.numel() for p in built.parameters())
    for name in ("rea", "predictor-rea"):
        searcher = make_searcher(name, SPACE, "val_acc", "max", 0, max_params=8000, model=model)
        archs = run(searcher, 30)
        assert len({a.key for a in archs}) == 30 and max(map(budget.count, archs)) <= 8000, name
    with pytest.raises(ValueError, match="meets the constraint \\(at most 10 parameters\\)"):
        make_searcher("rea", SPACE, max_params=10, model=model, max_resample=20)
    with pytest.raises(ValueError, match="needs their shape, model="):
        make_searcher("rea", SPACE, max_params=8000)
    with pytest.raises(ValueError, match="max_params must be a number > 0"):
        make_searcher("rea", SPACE, max_params="small", model=model)


def test_a_transferred_prior_picks_the_first_population_before_any_label():
    """While REA's population fills, the prior picks the best-scored of ``num_candidates``
    random unseen architectures; without a prior those picks are random."""
    first = lambda searcher: run(searcher, 10)  # noqa: E731 -- the population-fill phase
    guided = first(make(0, prior=_Knows(objective), num_candidates=20))
    plain = first(make(0, num_candidates=20))
    assert np.mean([objective(a) for a in guided]) > np.mean([objective(a) for a in plain]) + 2
    assert len({a.key for a in guided}) == 10
