"""Jacobian features of one architecture, and their bulk extraction to Parquet through Ray."""
from __future__ import annotations

import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from predictors.jacobian import (
    data_jacobian,
    init_seed,
    input_basis,
    input_batch,
    jacobian_features,
    row_separable,
    svd_features,
)
from predictors.jacobian_store import extract_to_parquet, iter_features, part_files, read_features, stored_keys
from search_spaces import get_space
from search_spaces.nb201 import NB201Space

SPACE = get_space("nb201")
BUILD = {"C": 4, "N": 1}
INPUTS = input_batch("digits", 32)
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
# dead edges (node 1 cannot reach the output) make these two strings the same function
TWIN_A = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"
TWIN_B = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|none~2|"
STORE = {"num_inits": 2, "batch_size": 16, "proj_dim": 8, "build": BUILD, "chunk": 3, "progress": False}



def features(arch=ARCH, **kw):
    options = {"inputs": INPUTS, "num_inits": 3, "proj": 16, "build": BUILD, **kw}
    return jacobian_features(arch, SPACE, **options)


def test_features_are_k_by_b_by_p_float32():
    out = features()
    assert out.shape == (3, 32, 16) and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).sum() > 0


def test_same_arch_and_seed_give_identical_features_and_isomorphic_twins_agree():
    torch.manual_seed(123)
    before = torch.rand(1)
    np.testing.assert_array_equal(features(), features(SPACE.parse(ARCH)))
    torch.manual_seed(123)
    assert torch.rand(1) == before  # initialising networks leaves the caller's RNG alone
    np.testing.assert_array_equal(features(TWIN_A), features(TWIN_B))
    assert not np.array_equal(features(seed=1), features())


def test_features_differ_across_initialisations_and_architectures():
    out = features()
    other = features(SPACE.sample(5))
    assert not np.allclose(out[0], out[1]) and not np.allclose(out[1], out[2])
    assert not np.allclose(out, other)


def test_rows_are_per_image_gradients_despite_batchnorm():
    net = SPACE.build(SPACE.parse(ARCH), 10, (1, 8, 8), **BUILD)
    x = INPUTS[:5]
    rows = data_jacobian(net, x)
    assert net.training and all(p.requires_grad for p in net.parameters())  # model state is restored
    with row_separable(net):
        full = torch.autograd.functional.jacobian(lambda z: net(z).sum(1), x).reshape(5, 5, -1)
    torch.testing.assert_close(torch.stack([full[i, i] for i in range(5)]), rows)
    assert full[~torch.eye(5, dtype=torch.bool)].abs().max() == 0  # no image influences another


def test_projection_basis_is_orthonormal_and_identity_when_p_covers_the_image():
    basis = input_basis(INPUTS, 16)
    assert basis.shape == (64, 16)
    np.testing.assert_allclose(basis.T @ basis, np.eye(16), atol=1e-5)
    np.testing.assert_array_equal(input_basis(INPUTS, 128), np.eye(64, dtype=np.float32))
    assert input_basis(INPUTS[:10], 20).shape == (64, 10)  # a batch spans at most B directions
    assert features(proj=128).shape == (3, 32, 64)


def test_per_matrix_svd_keeps_the_gram_matrix_with_reproducible_signs():
    """The published projection: U S of each matrix, so F F^T = J J^T when P covers its rank;
    flipping J's singular vectors (another SVD of the same matrix) changes nothing."""
    torch.manual_seed(init_seed(0, 0))  # initialisation 0 of features()
    j = data_jacobian(SPACE.build(SPACE.canonical(SPACE.parse(ARCH)), 10, (1, 8, 8), **BUILD), INPUTS)
    full = svd_features(j, 64)
    torch.testing.assert_close(full @ full.T, j @ j.T, rtol=1e-4, atol=1e-4 * float((j @ j.T).abs().max()))
    assert (full[full.abs().argmax(dim=0), torch.arange(64)] >= 0).all()
    assert svd_features(j[:10], 16).shape == (10, 16) and svd_features(j[:10], 16)[:, 10:].abs().max() == 0  # padded
    out = features(projection="svd")
    assert out.shape == (3, 32, 16) and not np.allclose(out, features())
    torch.testing.assert_close(torch.from_numpy(out[0]), svd_features(j, 16), rtol=1e-4, atol=1e-5)


def test_any_module_factory_works_but_a_module_instance_is_refused():
    def factory():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))

    out = jacobian_features(factory, inputs=INPUTS, num_inits=2, proj=8)
    assert out.shape == (2, 32, 8) and not np.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="factory"):
        jacobian_features(factory(), inputs=INPUTS)


def test_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        input_batch("mnist")
    with pytest.raises(ValueError, match="P must be >= 1"):
        features(proj=0)
    with pytest.raises(ValueError, match="projection: .pca. is not allowed"):
        features(projection="pca")
    with pytest.raises(ValueError, match="search space"):
        jacobian_features(ARCH, inputs=INPUTS)
    with pytest.raises(ValueError, match="batch_size must be in"):
        input_batch("digits", 10**6)
    with pytest.raises(ValueError, match="D x P"):
        features(proj=np.ones((10, 4)))
    with pytest.raises(FileNotFoundError, match="extract_to_parquet"):
        read_features(tmp_path / "absent.parquet")
    with pytest.raises(ValueError, match="P \\(proj_dim\\) must be >= 1"):
        extract_to_parquet(SPACE, 2, "digits", tmp_path / "f", proj_dim=0)
    with pytest.raises(FileNotFoundError, match="CIFAR-10 folder"):
        extract_to_parquet(SPACE, 2, f"cifar10:{tmp_path / 'missing'}", tmp_path / "f")


# ----------------------------------------------------------------------------- bulk, via Ray
class TroubledSpace(NB201Space):
    """NB201, except that building one chosen architecture crashes (a failure mid-extraction)
    or takes a second longer (its task finishes after later ones)."""

    def __init__(self, chosen_text: str, trouble: str):
        self.chosen_text, self.trouble = chosen_text, trouble

    def build(self, arch, *args, **kw):
        if arch.text == self.chosen_text:
            if self.trouble == "crash":
                raise RuntimeError("simulated crash")
            time.sleep(1.0)
        return super().build(arch, *args, **kw)


ARCHS = [SPACE.canonical(a) for a in SPACE.sample_unique(12, 7)]


def test_bulk_extraction_stores_features_once_per_isomorphism_class(ray_session, tmp_path):
    out = tmp_path / "features.parquet"
    inputs = [TWIN_A, *ARCHS[:4], TWIN_B, ARCHS[0].text]
    summary = extract_to_parquet(SPACE, inputs, "digits", out, **STORE)
    assert (summary.written, summary.duplicates, summary.already_stored) == (5, 2, 0)
    keys, archs, feats = read_features(out)
    assert len(set(keys)) == 5 and feats.shape == (5, 2, 16, 8)
    schema = pq.read_schema(part_files(out)[0])
    assert json.loads(schema.metadata[b"raynas.jacobian.shape"]) == [2, 16, 8]
    assert set(pq.read_table(part_files(out)[0]).column_names) == {"space", "arch", "key", "features"}
    # a Ray worker computes exactly what the in-process function computes
    row = keys.index(ARCHS[1].key)
    expected = jacobian_features(archs[row], SPACE, inputs=input_batch("digits", 16), num_inits=2, proj=8, build=BUILD)
    np.testing.assert_array_equal(feats[row], expected)
    streamed = list(iter_features(out, batch_rows=2, seed=0))
    assert sorted(k for ks, _ in streamed for k in ks) == sorted(keys)
    assert [len(ks) for ks, _ in streamed] == [2, 2, 1]


def test_rows_are_stored_in_the_order_asked_whatever_order_the_tasks_finish_in(ray_session, tmp_path):
    # the first task is the slowest, so the next ones finish before it; the encoder trains on
    # the parts as stored, and the same request must give the same encoder
    out = tmp_path / "features.parquet"
    extract_to_parquet(TroubledSpace(ARCHS[0].text, "slow"), ARCHS[:6], "digits", out, **STORE)
    keys, _, _ = read_features(out)
    assert keys == [a.key for a in ARCHS[:6]]


def test_extraction_resumes_after_a_crash_and_after_losing_a_part(ray_session, tmp_path):
    out = tmp_path / "features.parquet"
    with pytest.raises(RuntimeError, match="rerun to resume"):
        extract_to_parquet(TroubledSpace(ARCHS[7].text, "crash"), ARCHS, "digits", out, **STORE)
    kept = stored_keys(out)
    assert 1 <= len(kept) < 12 and ARCHS[7].key not in kept  # finished work survived the crash
    summary = extract_to_parquet(SPACE, ARCHS, "digits", out, **STORE)
    assert summary.already_stored == len(kept) and summary.written == 12 - len(kept)
    part_files(out)[0].unlink()
    again = extract_to_parquet(SPACE, ARCHS, "digits", out, **STORE)
    keys, _, _ = read_features(out)
    assert again.written >= 1 and sorted(keys) == sorted(a.key for a in ARCHS)


def test_resume_refuses_other_settings_and_names_a_damaged_part(ray_session, tmp_path):
    out = tmp_path / "features.parquet"
    extract_to_parquet(SPACE, ARCHS[:4], "digits", out, **STORE)
    with pytest.raises(ValueError, match="num_inits: stored 2, now 3"):
        extract_to_parquet(SPACE, ARCHS[:4], "digits", out, **{**STORE, "num_inits": 3})
    damaged = part_files(out)[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(ValueError, match=damaged.name):
        extract_to_parquet(SPACE, ARCHS, "digits", out, **STORE)
    with pytest.raises(ValueError, match="unknown dataset"):
        extract_to_parquet(SPACE, ARCHS, "imagenet", tmp_path / "other", **STORE)
