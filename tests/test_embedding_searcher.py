"""EmbeddingSearcher: GP-EI and black-box optimisers over an embedded candidate pool."""
from __future__ import annotations

import numpy as np
import pytest

from predictors.embeddings import ArchEmbeddings
from searchers import make_searcher
from searchers.embedding import EmbeddingSearcher
from search_loop import objective, run
from search_spaces import get_space

SPACE = get_space("nb201")
POOL = list(dict.fromkeys(SPACE.sample_unique(300, rng=0)))
EMBEDDINGS = ArchEmbeddings.one_hot(SPACE, POOL)
OPTIMIZERS = ["gp-ei", "nevergrad:NGOpt", "hyperopt:tpe", "ax"]



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


def test_ngopt_paths_differ_between_seeds():
    """NGOpt picks a deterministic local method for small budgets; the seeded start keeps
    seeds from all walking the same path."""
    paths = [[a.key for a in run(EmbeddingSearcher(EMBEDDINGS, "nevergrad:NGOpt", "val_acc", "max", seed=s, budget=30), 6)] for s in (0, 1)]
    assert paths[0] != paths[1]


def test_rank_warp_keeps_the_order_and_tames_outliers():
    from searchers.embedding import _warped

    values = np.array([10.0, 90.0, 91.0, 91.5, 92.0])
    warped = _warped(values, "rank")
    assert np.array_equal(np.argsort(warped), np.argsort(values))
    assert warped[1] - warped[0] < 2 * (warped[2] - warped[1])  # the 10% cell is no longer 80 points away
    assert np.array_equal(_warped(values, "none"), values)
    with pytest.raises(ValueError, match="warp must be one of"):
        EmbeddingSearcher(EMBEDDINGS, "gp-ei", warp="log")
