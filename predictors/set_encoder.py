"""DeepSet encoder of Jacobian feature sets, trained contrastively (NT-Xent).

One initialisation of one architecture is a set ``X`` of ``B`` rows in ``R^P`` (see
:mod:`predictors.jacobian`).  The encoder is permutation invariant over the rows:

.. math::
    h = \\rho\\Big(\\frac{1}{B}\\sum_b \\phi([x_b / s,\\ \\log s])\\Big), \\qquad
    z = g(h), \\qquad s = \\mathrm{RMS}(X),

with ``phi`` and ``rho`` ReLU MLPs (``layers`` each: 2 by default, 4 as published), ``h``
the 256-d embedding and ``z`` what the loss sees.  The default head ``g`` is SimCLR's
(Linear-BatchNorm-ReLU-Linear): its BatchNorm standardises the embeddings across the batch,
without which the near-identical embeddings of a fresh encoder leave the loss at chance for
many steps; ``head="linear"`` is the published ReLU-Linear.  Each set is scaled to
unit RMS and its log-scale (clamped to [-10, 10]) is appended to every row, so Jacobians whose
magnitudes differ by orders of magnitude stay in range while the scale, which differs more
between architectures than between initialisations, still informs the embedding.

Training (:func:`train_encoder`): every step takes a batch of architectures, two different
random initialisations of each, and minimises :func:`~raynas.losses.nt_xent`: the two initialisations of one
architecture are the positive pair, every other architecture in the batch is a negative
(published: Adam, lr 5e-5 decayed by 0.95 per epoch, batch 1024, 30 epochs, temperature 0.1).
An architecture's embedding (:func:`embed`) is the mean of ``h`` over its initialisations.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from predictors.jacobian_store import iter_features, read_meta
from raynas.io import load_dir, save_dir
from raynas.losses import nt_xent
from search_spaces.base import check_choice


HEADS = ("simclr", "linear")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SetEncoder(nn.Module):
    """DeepSet: shared row MLP ``phi``, mean pool, MLP ``rho`` to the embedding; head ``g``.

    Args:
        in_dim: ``P``, the width of each row of a feature set.
        hidden: width of the hidden layers of ``phi`` and ``rho``.
        embed_dim: size of the embedding ``h``.
        head_dim: size of the projection ``z`` the contrastive loss sees.
        layers: linear layers in each of ``phi`` and ``rho``.
        head: ``"simclr"`` (Linear-BatchNorm-ReLU-Linear) or ``"linear"`` (ReLU-Linear, published).
    """

    def __init__(
        self, in_dim: int, hidden: int = 256, embed_dim: int = 256, head_dim: int = 128, layers: int = 2,
        head: str = "simclr",
    ):  # fmt: skip
        super().__init__()
        sizes = {"in_dim": in_dim, "hidden": hidden, "embed_dim": embed_dim, "head_dim": head_dim, "layers": layers}
        for name, value in sizes.items():
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        check_choice("head", head, HEADS)
        self.hparams = {**{k: int(v) for k, v in sizes.items()}, "head": head}
        self.phi = _mlp([in_dim + 1, *[hidden] * layers])
        self.rho = _mlp([*[hidden] * layers, embed_dim])
        self.head = (
            nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU(), nn.Linear(embed_dim, head_dim))
            if head == "simclr" else nn.Linear(embed_dim, head_dim)
        )  # fmt: skip
        self.loss_history_: list[float] = []
        self.feature_meta_: dict[str, Any] = {}

    def forward(self, sets: torch.Tensor) -> torch.Tensor:
        """Embeddings ``N x embed_dim`` of ``N`` sets ``N x B x P``."""
        if sets.dim() != 3 or sets.shape[-1] != self.hparams["in_dim"]:
            raise ValueError(f"expected sets of shape N x B x {self.hparams['in_dim']}, got {tuple(sets.shape)}")
        scale = sets.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-12)
        rows = torch.cat([sets / scale, scale.log().clamp(-10, 10).expand(*sets.shape[:2], 1)], dim=2)
        return self.rho(F.relu(self.phi(rows)).mean(dim=1))

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """The projection head ``g`` (used by the training loss only)."""
        return self.head(F.relu(embedding))

    def save(self, path: str | Path) -> Path:
        """Write ``path/weights.pt`` (state dict) and ``path/config.json`` (hyper-parameters,
        training losses and the settings of the features it was trained on)."""
        config = {"hparams": self.hparams, "loss_history": self.loss_history_, "feature_meta": self.feature_meta_}
        return save_dir(path, self.state_dict(), config)

    @classmethod
    def load(cls, path: str | Path) -> "SetEncoder":
        """An encoder written by :meth:`save`."""
        config, weights = load_dir(path, "SetEncoder")
        encoder = cls(**config["hparams"])
        encoder.load_state_dict(weights)
        encoder.loss_history_ = list(config.get("loss_history", []))
        encoder.feature_meta_ = dict(config.get("feature_meta", {}))
        return encoder.eval()


def _batches(source: str | Path | np.ndarray, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Shuffled ``n x K x B x P`` batches of a features directory (streamed) or an array."""
    if isinstance(source, np.ndarray):
        order = np.random.default_rng(seed).permutation(len(source))
        for start in range(0, len(order), batch_size):
            yield source[np.sort(order[start : start + batch_size])]
    else:
        for _, features in iter_features(source, batch_size, seed=seed):
            yield features


def _source_meta(source: str | Path | np.ndarray) -> tuple[list[int], dict[str, Any]]:
    if isinstance(source, np.ndarray):
        if source.ndim != 4:
            raise ValueError(f"feature array must be N x K x B x P, got shape {source.shape}")
        return list(source.shape[1:]), {}
    if not isinstance(source, (str, Path)):
        raise ValueError(f"features_source must be a features directory or an N x K x B x P array, got {type(source).__name__}")
    meta = read_meta(source)
    return meta["shape"], meta


def train_encoder(
    features_source: str | Path | np.ndarray,
    epochs: int = 30,
    batch_size: int = 1024,
    lr: float = 5e-5,
    decay: float = 0.95,
    seed: int = 0,
    temperature: float = 0.1,
    encoder: SetEncoder | None = None,
    **hparams: Any,
) -> SetEncoder:
    """Train a :class:`SetEncoder` with NT-Xent on Jacobian features.

    Args:
        features_source: a directory written by
            :func:`~predictors.jacobian_store.extract_to_parquet` (streamed, never loaded whole)
            or an ``N x K x B x P`` array; ``K >= 2`` initialisations are needed.
        epochs, batch_size, lr, decay, temperature: Adam with the learning rate multiplied by
            ``decay`` after every epoch; ``batch_size`` architectures per step.
        seed: encoder initialisation, batch order and the pairs of initialisations drawn.
        encoder: continue training this encoder instead of a new one.
        hparams: ``hidden``, ``embed_dim``, ``head_dim``, ``layers``, ``head`` of a new encoder.

    Returns the encoder (in eval mode) with ``loss_history_`` (mean loss of every epoch).
    """
    shape, meta = _source_meta(features_source)
    if shape[0] < 2:
        raise ValueError(f"contrastive training needs >= 2 initialisations per architecture, the features have K = {shape[0]}")
    for name, value in {"epochs": epochs, "batch_size": batch_size, "lr": lr, "decay": decay}.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (the other architectures are the negatives), got {batch_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = encoder if encoder is not None else SetEncoder(shape[2], **hparams)
    if model.hparams["in_dim"] != shape[2]:
        raise ValueError(f"encoder expects P = {model.hparams['in_dim']} but the features have P = {shape[2]}")
    model.feature_meta_ = meta or model.feature_meta_
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        losses = []
        for features in _batches(features_source, batch_size, seed * 100_003 + epoch):
            n, k = features.shape[:2]
            if n < 2:
                continue
            x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            first = torch.randint(k, (n,), generator=generator)
            second = (first + torch.randint(1, k, (n,), generator=generator)) % k
            rows = torch.arange(n)
            z = model.project(model(torch.cat([x[rows, first], x[rows, second]])))
            loss = nt_xent(z[:n], z[n:], temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        model.loss_history_.append(float(np.mean(losses)) if losses else float("nan"))
    return model.eval()


def embed(encoder: SetEncoder, features: np.ndarray, batch_size: int = 256, per_init: bool = False) -> np.ndarray:
    """Embeddings (mean over initialisations): ``N x K x B x P`` -> ``N x E``, ``K x B x P`` -> ``E``;
    with ``per_init`` each initialisation's: ``N x K x E``, ``K x E``."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim not in (3, 4):
        raise ValueError(f"features must be K x B x P or N x K x B x P, got shape {features.shape}")
    batch = features[None] if features.ndim == 3 else features
    n, k = batch.shape[:2]
    flat = torch.from_numpy(np.ascontiguousarray(batch.reshape(n * k, *batch.shape[2:])))
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        parts = [encoder(flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)]
    h = torch.cat(parts) if parts else torch.zeros(0, encoder.hparams["embed_dim"])
    encoder.train(was_training)
    out = h.reshape(n, k, -1)
    out = (out if per_init else out.mean(dim=1)).numpy()
    return out[0] if features.ndim == 3 else out
