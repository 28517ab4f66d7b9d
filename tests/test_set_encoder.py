"""DeepSet encoder of Jacobian features: NT-Xent, training, embeddings, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from predictors.jacobian import input_batch, jacobian_features
from predictors.jacobian_store import extract_to_parquet
from predictors.set_encoder import SetEncoder, embed, train_encoder
from raynas.losses import nt_xent
from search_spaces import get_space

SPACE = get_space("nb201")
SMALL = {"hidden": 64, "embed_dim": 32, "head_dim": 16}



@pytest.fixture(scope="module")
def features() -> np.ndarray:
    """Features of 12 NB201 archs (C=16, N=1): 12 x 4 inits x 64 images x 32 directions."""
    inputs = input_batch("digits", 64)
    archs = SPACE.sample_unique(12, 3)
    return np.stack([jacobian_features(a, SPACE, inputs=inputs, proj=32, build={"C": 16, "N": 1}) for a in archs])


def test_nt_xent_is_lower_for_aligned_pairs_than_for_shuffled_pairs():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(16, 8, generator=generator)
    noisy = z + 0.1 * torch.randn(16, 8, generator=generator)
    assert nt_xent(z, noisy, 0.1) < 0.1 < nt_xent(z, noisy[torch.randperm(16, generator=generator)], 0.1)
    with pytest.raises(ValueError, match="N x D"):
        nt_xent(z, z[:3])
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z, z, 0.0)


def test_training_lowers_the_loss_and_inits_of_one_arch_embed_closest(features):
    encoder = train_encoder(features, epochs=2, batch_size=4, lr=1e-3, seed=0, **SMALL)
    first, last = encoder.loss_history_
    assert last < first
    one, two = embed(encoder, features[:, :1]), embed(encoder, features[:, 1:2])
    distance = np.linalg.norm(one[:, None] - two[None], axis=2)
    same = np.diag(distance).mean()
    other = distance[~np.eye(len(distance), dtype=bool)].mean()
    assert same < other
    assert embed(encoder, features).shape == (12, 32) and embed(encoder, features[0]).shape == (32,)


def test_save_and_load_give_identical_embeddings(features, tmp_path):
    encoder = train_encoder(features, epochs=1, batch_size=6, lr=1e-3, seed=1, **SMALL)
    loaded = SetEncoder.load(encoder.save(tmp_path / "encoder"))
    np.testing.assert_array_equal(embed(loaded, features), embed(encoder, features))
    assert loaded.hparams == encoder.hparams and loaded.loss_history_ == encoder.loss_history_


def test_the_published_encoder_shape_trains_and_reloads(features, tmp_path):
    """DeepSet 4+4 layers and a ReLU-Linear head (Hesslow & Poli) beside the default 2+2 and SimCLR head.
    Without the head's BatchNorm the loss sits at chance for many steps before it falls."""
    encoder = train_encoder(features, epochs=20, batch_size=4, lr=1e-3, seed=0, layers=4, head="linear", **SMALL)
    linears = [m for m in [*encoder.phi, *encoder.rho] if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 8 and isinstance(encoder.head, torch.nn.Linear) and encoder.head.out_features == 16
    assert len(SetEncoder(32, **SMALL).phi) == 3  # the default: Linear-ReLU-Linear
    assert encoder.loss_history_[-1] < encoder.loss_history_[0] - 0.05
    loaded = SetEncoder.load(encoder.save(tmp_path / "paper"))
    assert loaded.hparams["layers"] == 4 and loaded.hparams["head"] == "linear"
    np.testing.assert_array_equal(embed(loaded, features), embed(encoder, features))


def test_training_streams_from_an_extracted_features_directory(ray_session, tmp_path):
    out = tmp_path / "features.parquet"
    options = {"num_inits": 2, "batch_size": 16, "proj_dim": 8, "build": {"C": 4, "N": 1}, "chunk": 4, "progress": False}
    extract_to_parquet(SPACE, 8, "digits", out, **options)
    encoder = train_encoder(out, epochs=2, batch_size=3, lr=1e-3, seed=0, **SMALL)
    assert len(encoder.loss_history_) == 2 and np.isfinite(encoder.loss_history_).all()
    assert encoder.feature_meta_["shape"] == [2, 16, 8] and encoder.feature_meta_["dataset"] == "digits"


def test_bad_input_raises_clear_errors(features, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved SetEncoder"):
        SetEncoder.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match=">= 2 initialisations"):
        train_encoder(features[:, :1], epochs=1)
    with pytest.raises(ValueError, match="P = 32"):
        train_encoder(features, epochs=1, encoder=SetEncoder(8))
    with pytest.raises(ValueError, match="N x B x 8"):
        embed(SetEncoder(8), features)
    with pytest.raises(ValueError, match="in_dim must be >= 1"):
        SetEncoder(0)
    with pytest.raises(ValueError, match="head: .mlp. is not allowed"):
        SetEncoder(8, head="mlp")
