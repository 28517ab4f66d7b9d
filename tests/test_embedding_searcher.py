"""Embedding searchers: GP-EI and black-box optimisers over an embedded candidate pool."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.embeddings import ArchEmbeddings
from searchers import make_searcher
from searchers.embedding import EmbeddingGPSearcher
from searchers.embedding_pool import EmbeddingPoolSearcher
from search_loop import objective, run
from search_spaces import get_space

SPACE = get_space("nb201")
POOL = list(dict.fromkeys(SPACE.sample_unique(300, rng=0)))
EMBEDDINGS = ArchEmbeddings.one_hot(SPACE, POOL)
OPTIMIZERS = ["gp-ei", "nevergrad:NGOpt", "hyperopt:tpe", "ax"]


def EmbeddingSearcher(embeddings, optimizer="gp-ei", *args, num_initial=10, budget=1000, **kw):
    """The GP searcher for "gp-ei", else the pool searcher driven by ``optimizer``."""
    if optimizer == "gp-ei":
        return EmbeddingGPSearcher(embeddings, *args, num_initial=num_initial, **kw)
    return EmbeddingPoolSearcher(embeddings, optimizer, *args, budget=budget, **kw)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_suggestions_come_from_the_pool_without_repeats(optimizer):
    searcher = EmbeddingSearcher(EMBEDDINGS, optimizer, "val_acc", "max", seed=0, num_initial=5, budget=30)
    archs = run(searcher, 12)  # past the 5 random picks of gp-ei and Ax's initial Sobol points
    assert len(archs) == 12 and len({a.key for a in archs}) == 12
    assert all(a in EMBEDDINGS for a in archs)


def test_gp_ei_finds_better_architectures_than_random_picks():
    gp = [max(objective(a) for a in run(EmbeddingSearcher(EMBEDDINGS, "gp-ei", "val_acc", "max", seed=s), 20)) for s in range(2)]
    pool_values = np.array([objective(a) for a in POOL])
    rng = np.random.default_rng(0)
    random_best = [pool_values[rng.choice(len(POOL), 20, replace=False)].max() for _ in range(200)]
    assert np.mean(gp) >= np.mean(random_best)
    assert max(gp) == pool_values.max()


def test_search_stops_when_the_pool_is_used_up():
    small = ArchEmbeddings.one_hot(SPACE, POOL[:6])
    searcher = EmbeddingSearcher(small, "gp-ei", "val_acc", "max", seed=0, num_initial=2)
    assert len(run(searcher, 10)) == 6


@pytest.mark.parametrize("optimizer", ["gp-ei", "nevergrad:NGOpt", "hyperopt:tpe"])
def test_save_and_restore_continue_without_repeats(optimizer, tmp_path):
    first = EmbeddingSearcher(EMBEDDINGS, optimizer, "val_acc", "max", seed=1, num_initial=4, budget=40)
    before = run(first, 12)
    first.save(str(tmp_path / "s.pkl"))
    again = EmbeddingSearcher(EMBEDDINGS, optimizer, "val_acc", "max", seed=7, num_initial=4, budget=40)
    again.restore(str(tmp_path / "s.pkl"))
    after = run(again, 12, start=12)
    assert len({a.key for a in before + after}) == 24
    assert int((~again.free).sum()) == 24


def test_registry_builds_embedding_searchers_from_a_table_file(tmp_path):
    path = EMBEDDINGS.to_parquet(tmp_path / "emb.parquet")
    searcher = make_searcher("embedding-gp", SPACE, "val_acc", "max", 0, embeddings=str(path))
    assert len(run(searcher, 3)) == 3
    again = ArchEmbeddings.from_parquet(path)
    assert np.array_equal(again.vectors, EMBEDDINGS.vectors) and again.archs[5].same_spec(EMBEDDINGS.archs[5])


def test_bad_optimizer_and_bad_tables_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown optimizer 'cma'"):
        EmbeddingSearcher(EMBEDDINGS, "cma")
    with pytest.raises(ValueError, match="one vector per architecture"):
        ArchEmbeddings(SPACE, POOL[:3], np.zeros((2, 4)))
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        ArchEmbeddings.from_parquet(tmp_path / "missing.parquet")
    # a table written by something else, with a NaN and an inf: named before any search starts
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = EMBEDDINGS.to_parquet(tmp_path / "nan.parquet")
    vectors = EMBEDDINGS.vectors.copy()
    vectors[[3, 7], 0] = [np.nan, np.inf]
    table = pq.read_table(path)
    column = pa.array(list(vectors), type=table.schema.field("embedding").type)
    pq.write_table(table.set_column(table.column_names.index("embedding"), "embedding", column), path)
    with pytest.raises(ValueError, match=r"2 of 300 embedding vectors hold NaN or inf values, e.g. that of \|"):
        make_searcher("embedding-gp", SPACE, "val_acc", "max", 0, embeddings=str(path))


def _with_initialisations(embeddings: ArchEmbeddings, inits: int = 4, spread: float = 0.1) -> ArchEmbeddings:
    """``embeddings`` with ``inits`` noisy vectors per architecture around its own (as random
    initialisations of one network give)."""
    rng = np.random.default_rng(0)
    per_init = embeddings.vectors[:, None, :] + spread * rng.normal(size=(len(embeddings), inits, embeddings.dim))
    return ArchEmbeddings(embeddings.space, embeddings.archs, per_init.mean(axis=1), per_init)


def test_per_initialisation_vectors_survive_the_table_and_mean_to_the_vector(tmp_path):
    from predictors.set_encoder import SetEncoder, embed

    table = _with_initialisations(EMBEDDINGS)
    again = ArchEmbeddings.from_parquet(table.to_parquet(tmp_path / "emb.parquet"))
    assert again.per_init.shape == (len(POOL), 4, EMBEDDINGS.dim) and np.array_equal(again.per_init, table.per_init)
    assert ArchEmbeddings.from_parquet(EMBEDDINGS.to_parquet(tmp_path / "plain.parquet")).per_init is None
    features = np.random.default_rng(1).normal(size=(3, 4, 8, 5)).astype(np.float32)
    encoder = SetEncoder(5, hidden=16, embed_dim=6, head_dim=4)
    each = embed(encoder, features, per_init=True)
    assert each.shape == (3, 4, 6) and np.allclose(each.mean(axis=1), embed(encoder, features), atol=1e-6)
    with pytest.raises(ValueError, match="per_init must be archs x inits"):
        ArchEmbeddings(SPACE, POOL[:3], np.zeros((3, 4)), np.zeros((3, 2, 5)))


def test_the_published_preset_finds_better_architectures_than_random_picks():
    """Hesslow & Poli's settings (fixed Matern-5/2 GP on each initialisation's embedding, EI over
    20 random untried candidates): on the stand-in objective, whose values span a few units
    like the paper's accuracy percentages, better than random within 25 queries."""
    table = _with_initialisations(EMBEDDINGS)
    make = lambda seed: make_searcher("embedding-gp", SPACE, "val_acc", "max", seed, embeddings=table, preset="paper")  # noqa: E731
    found = [max(objective(a) for a in run(make(seed), 25)) for seed in range(4)]
    pool_values = np.array([objective(a) for a in POOL])
    rng = np.random.default_rng(0)
    random_best = [pool_values[rng.choice(len(POOL), 25, replace=False)].max() for _ in range(400)]
    assert np.mean(found) > np.mean(random_best)
    with pytest.raises(ValueError, match="unknown embedding-gp preset 'published'"):
        make_searcher("embedding-gp", SPACE, embeddings=table, preset="published")
    with pytest.raises(ValueError, match="noise must be > 0"):
        make_searcher("embedding-gp", SPACE, embeddings=table, preset="paper", noise=0)


def test_ngopt_paths_differ_between_seeds():
    """NGOpt picks a deterministic local method for small budgets; the seeded start keeps
    seeds from all walking the same path."""
    paths = [[a.key for a in run(EmbeddingSearcher(EMBEDDINGS, "nevergrad:NGOpt", "val_acc", "max", seed=s, budget=30), 6)] for s in (0, 1)]
    assert paths[0] != paths[1]


def test_rank_warp_keeps_the_order_and_tames_outliers():
    from predictors.gp import warped as _warped

    values = np.array([10.0, 90.0, 91.0, 91.5, 92.0])
    warped = _warped(values, "rank")
    assert np.array_equal(np.argsort(warped), np.argsort(values))
    assert warped[1] - warped[0] < 2 * (warped[2] - warped[1])  # the 10% cell is no longer 80 points away
    assert np.array_equal(_warped(values, "none"), values)
    with pytest.raises(ValueError, match="warp: .* is not allowed"):
        EmbeddingSearcher(EMBEDDINGS, "gp-ei", warp="log")


def test_hyperparameters_are_refitted_on_a_geometric_schedule(monkeypatch):
    import searchers.embedding as module

    fits = []
    original = module.GPSurrogate.fit

    def counting_fit(self, X, y, hyper_from=None, fallback=None):
        fits.append(hyper_from is None)
        return original(self, X, y, hyper_from, fallback)

    monkeypatch.setattr(module.GPSurrogate, "fit", counting_fit)
    searcher = EmbeddingSearcher(EMBEDDINGS, "gp-ei", "val_acc", "max", seed=0, num_initial=2, refit_until=10, refit_growth=0.5)
    archs = run(searcher, 40)
    assert len({a.key for a in archs}) == 40
    # every step fits up to 10 observations, then only at 15, 23, 35 (50 % growth each)
    assert sum(fits) == 9 + 3 and len(fits) == 38


def test_conditioning_on_fitted_hyperparameters_reproduces_the_fit():
    from predictors.gp import GPSurrogate

    rng = np.random.default_rng(0)
    X, grid = rng.normal(size=(60, 4)), rng.normal(size=(500, 4))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=60)
    fitted = GPSurrogate().fit(X, y)
    conditioned = GPSurrogate().fit(X, y, hyper_from=fitted)
    assert np.allclose(fitted.log_ei(grid), conditioned.log_ei(grid))
    more = GPSurrogate().fit(np.vstack([X, grid[:5]]), np.r_[y, np.sin(grid[:5, 0])], hyper_from=fitted)
    mean, std = more.predict(grid[:5])
    assert np.all(std < fitted.predict(grid[:5])[1])  # the new observations are now known


@pytest.mark.parametrize("ard", [False, True])
def test_gp_marginals_equal_botorchs_posterior(ard):
    """``predict`` computes the marginals from one Cholesky factor instead of BoTorch's
    posterior object: the same numbers, in and out of the training inputs' range."""
    import torch

    from predictors.gp import GPSurrogate

    rng = np.random.default_rng(1)
    X, grid = rng.normal(size=(80, 3)), 1.5 * rng.normal(size=(700, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.normal(size=80)
    gp = GPSurrogate(ard=ard).fit(X, y)
    mean, std = gp.predict(grid, chunk=256)
    with torch.no_grad():
        posterior = gp.model_.posterior(torch.as_tensor(grid))
    assert np.allclose(mean, posterior.mean.squeeze(-1).numpy(), atol=1e-9)
    assert np.allclose(std, posterior.variance.sqrt().squeeze(-1).numpy(), atol=1e-9)
    assert std.std() > 0.01 and mean.std() > 0.1  # a fitted, not a flat, surrogate


class _ObjectivePredictor:
    def predict(self, archs):
        mean = np.array([objective(a) for a in archs], dtype=float)
        return mean, np.zeros_like(mean)


def test_a_prior_from_a_table_a_mapping_or_a_predictor_gives_the_same_scores(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from searchers.embedding import prior_scores

    scores = {a.text: objective(a) for a in POOL}
    pq.write_table(pa.table({"arch": list(scores), "score": list(scores.values())}), tmp_path / "prior.parquet")
    from_table = prior_scores(str(tmp_path / "prior.parquet"), EMBEDDINGS)
    assert np.allclose(from_table, prior_scores(scores, EMBEDDINGS))
    assert np.allclose(from_table, prior_scores(_ObjectivePredictor(), EMBEDDINGS))
    assert np.allclose(from_table, prior_scores({a: objective(a) for a in POOL}, EMBEDDINGS))  # Arch keys
    half = prior_scores(dict(list(scores.items())[:150]), EMBEDDINGS)  # the rest get the median
    assert np.isfinite(half).all() and len(np.unique(half[150:])) == 1
    pq.write_table(pa.table({"arch": list(scores)}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"prior table .* lacks columns \['score'\]"):
        prior_scores(str(tmp_path / "bad.parquet"), EMBEDDINGS)
    with pytest.raises(ValueError, match="none of the embedded"):
        prior_scores({SPACE.from_index(5).text: 1.0} if SPACE.from_index(5) not in EMBEDDINGS else {}, EMBEDDINGS)


def test_a_good_prior_finds_the_best_sooner_and_a_noise_prior_costs_little():
    best = max(objective(a) for a in POOL)

    def queries_to_best(prior, seed):
        searcher = EmbeddingSearcher(EMBEDDINGS, "gp-ei", "val_acc", "max", seed=seed, num_initial=3, prior=prior)
        values = [objective(a) for a in run(searcher, 60, until=best)]
        return values.index(best) + 1 if best in values else 61

    good = {a.key: objective(a) for a in POOL}
    reversed_ = {k: -v for k, v in good.items()}  # the fitted slope b turns negative
    noise = dict(zip(good, np.random.default_rng(0).normal(size=len(good))))
    without = np.mean([queries_to_best(None, s) for s in range(3)])  # 18 measured
    assert np.mean([queries_to_best(good, s) for s in range(3)]) <= min(8, without / 2)  # 4
    assert np.mean([queries_to_best(reversed_, s) for s in range(3)]) <= min(8, without / 2)
    assert np.mean([queries_to_best(noise, s) for s in range(3)]) <= without + 5  # 15.7: fitted away


def test_a_prior_right_about_the_bad_but_wrong_about_the_good_loses_its_weight():
    """The prior's weight is its skill at ranking the better half of what was observed: a
    prior that only tells collapsed cells from good ones fits all observations well (a large
    least-squares slope) and would keep the GP among its favourites; its weight goes to 0."""
    from predictors.prior_mean import prior_skill

    rng = np.random.default_rng(0)
    y = rng.normal(size=60)
    assert prior_skill(y + 0.1 * rng.normal(size=60), y) > 0.9
    coarse = np.where(y >= np.median(y), 1.0 + 0.1 * rng.normal(size=60), -1.0)  # right about the bad half only
    assert np.corrcoef(coarse, y)[0, 1] > 0.7 and prior_skill(coarse, y) == 0.0
    assert prior_skill(-y, y) > 0.9  # a reversed prior ranks as well (its slope is negative)
    assert prior_skill(rng.normal(size=3), y[:3]) == 1.0  # too few to judge: the prior as fitted

    good = {a.key: objective(a) for a in POOL}
    top = np.quantile(list(good.values()), 0.7)
    misleading = {k: (v < top) * v + (v >= top) * (top + rng.uniform()) for k, v in good.items()}
    weights = {"good": [], "misleading": []}
    for name, prior in (("good", good), ("misleading", misleading)):
        for seed in range(3):
            searcher = EmbeddingSearcher(EMBEDDINGS, "gp-ei", "val_acc", "max", seed=seed, num_initial=5, prior=prior)
            run(searcher, 30)
            weights[name].append(searcher.prior_weight_)
    assert np.mean(weights["good"]) > 0.5 and np.mean(weights["misleading"]) < 0.25  # 0.98 and 0.13 measured
    with pytest.raises(ValueError, match="prior_weight must be 'auto' or a number in"):
        EmbeddingSearcher(EMBEDDINGS, "gp-ei", prior=good, prior_weight=2)


def test_local_steps_try_the_neighbors_of_the_best_architecture_first():
    start = SPACE.make(("avg_pool_3x3",) * 6)
    ring = [n for a in [start, *SPACE.neighbors(start)] for n in [a, *SPACE.neighbors(a)]]
    pool = ArchEmbeddings.one_hot(SPACE, list(dict.fromkeys(SPACE.canonical(a) for a in ring)))
    fast = {"refit_until": 8}  # hyper-parameters refitted on the geometric schedule: the local rule is under test
    searcher = EmbeddingSearcher(pool, "gp-ei", "val_acc", "max", seed=0, num_initial=3, local=1, **fast)
    archs = run(searcher, 40)
    assert len({a.key for a in archs}) == 40
    for i in range(3, 40):
        values = [objective(a) for a in archs[:i]]
        best = archs[values.index(max(values))]
        free = {n.key for n in SPACE.neighbors(best) if n in pool} - {a.key for a in archs[:i]}
        assert not free or archs[i].key in free, f"query {i} left the neighbourhood of the best"
    global_ = run(EmbeddingSearcher(pool, "gp-ei", "val_acc", "max", seed=0, num_initial=3, **fast), 40)
    assert max(objective(a) for a in archs) >= max(objective(a) for a in global_)
    with pytest.raises(ValueError, match="local must be >= 0"):
        EmbeddingSearcher(pool, local=-1)


def _failing_fits(monkeypatch, fail_on: set[int]) -> list[int]:
    """BoTorch's fit raising ``ModelFittingError`` (what it does once all its retries fail) on
    the calls numbered in ``fail_on``; returns the number of observations of each call."""
    import predictors.gp as gp
    from botorch.exceptions.errors import ModelFittingError

    sizes, original = [], gp.fit_gpytorch_mll

    def fit(mll, *args, **kw):
        sizes.append(len(mll.model.train_targets))
        if len(sizes) - 1 in fail_on:
            raise ModelFittingError("All attempts to fit the model have failed.")
        return original(mll, *args, **kw)

    monkeypatch.setattr(gp, "fit_gpytorch_mll", fit)
    return sizes


def test_a_failed_fit_takes_the_fallbacks_hyperparameters_or_botorchs_initial_ones(monkeypatch):
    from predictors.gp import GPSurrogate

    rng = np.random.default_rng(0)
    X, grid = rng.normal(size=(40, 4)), rng.normal(size=(200, 4))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=40)
    good = GPSurrogate().fit(X[:30], y[:30])
    assert not good.fit_failed_
    _failing_fits(monkeypatch, fail_on={0, 1})
    with pytest.warns(RuntimeWarning, match="fit failed on 40 points .* the last good fit's hyper-parameters"):
        failed = GPSurrogate().fit(X, y, fallback=good)
    assert failed.fit_failed_
    assert np.allclose(failed.log_ei(grid), GPSurrogate().fit(X, y, hyper_from=good).log_ei(grid))
    with pytest.warns(RuntimeWarning, match="BoTorch's initial hyper-parameters"):
        initial = GPSurrogate().fit(X, y)
    mean, std = initial.predict(grid)
    assert np.isfinite(mean).all() and (std > 0).all()
    assert np.corrcoef(mean, np.sin(grid[:, 0]))[0, 1] > 0.5  # untuned, but still a model of the data


def test_a_search_goes_on_through_a_failed_fit_and_fits_again_at_the_next_step(monkeypatch):
    sizes = _failing_fits(monkeypatch, fail_on={0, 2})
    searcher = EmbeddingSearcher(
        EMBEDDINGS, "gp-ei", "val_acc", "max", seed=0, num_initial=5, refit_until=5, refit_growth=0.5
    )
    with pytest.warns(RuntimeWarning, match="GP hyper-parameter fit failed"):
        archs = run(searcher, 20)
    assert len({a.key for a in archs}) == 20 and searcher.fit_failures_ == 2
    # the schedule fits at 5, then at 50 % growth; a failed fit (at 5 and at 9) does not count
    # as one, so the next step fits again (counting it would give 5, 8, 12, 18)
    assert sizes == [5, 6, 9, 10, 15]
    assert not searcher._surrogate.fit_failed_


def test_a_gp_predictor_names_a_prior_that_knows_none_of_its_labels():
    from predictors.embedding_gp import EmbeddingGPPredictor

    labelled = POOL[:20]
    values = [objective(a) for a in labelled]
    other = {get_space("nb101").sample_unique(1, rng=0)[0]: 1.0}
    with pytest.raises(ValueError, match="the prior scores none of the 20 architectures to fit"):
        EmbeddingGPPredictor(SPACE, prior=other).fit(labelled, values)
    by_arch = EmbeddingGPPredictor(SPACE, prior={a: objective(a) for a in POOL}, prior_weight=1.0).fit(labelled, values)
    assert by_arch.prior_mean_[1] > 0  # the prior (the objective itself) is used, not filled away
