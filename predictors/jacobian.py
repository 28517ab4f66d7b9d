"""Data-Jacobian features of an architecture: what the Jacobian contrastive embedding sees.

For a fixed batch ``X`` of ``B`` images and ``K`` independent random initialisations
``f_1 .. f_K`` of one network, the data Jacobian of initialisation ``k`` is the ``B x D``
matrix (``D = C * H * W``) whose row ``b`` is

.. math::
    J_k[b] = \\nabla_{x_b} \\sum_c f_k(x_b)_c .

**One backward per initialisation.**  The summed logits separate over images, so the gradient
of ``sum_b sum_c f_k(x_b)_c`` with respect to the whole batch is all ``B`` rows at once, as
long as no layer mixes images.  BatchNorm in training mode does (its statistics are batch
means), and BatchNorm in eval mode with fresh running statistics (mean 0, variance 1) is the
identity, which leaves a freshly initialised deep network with activations that vanish or
explode with depth.  So while a Jacobian is taken every BatchNorm normalises with the
statistics of the batch *detached from the graph*: the network is exactly the eval-mode
network whose running statistics were calibrated on this batch, activations have the scale
training sees at its first step, and rows stay independent.  Dropout is off (eval mode) and
parameters do not require gradients, so the backward pass computes input gradients only.

**Projection (the choice and why).**  Each ``J_k`` is projected onto ``P`` directions, giving
a set of ``B`` vectors in ``R^P`` (feature array ``K x B x P``).  Every architecture and every
initialisation is projected onto ONE shared basis ``V`` (``D x P``): the top-``P`` right
singular vectors of the input batch itself (:func:`input_basis`), or of any reference matrix
you pass (:func:`svd_basis`, e.g. stacked Jacobians of reference architectures).  A per-matrix
SVD (``J_k V_k = U_k S_k``) keeps the Gram matrix ``J J^T`` but its coordinates are defined
only up to a sign per column (and a rotation among equal singular values) that differ between
architectures and between initialisations; the DeepSet encoder is invariant to the order of
rows, not to flips of columns, so those coordinates would be noise, and incomparable across
architectures.  The input basis depends on the data alone, so features of any space (and of
any user module) on the same batch share coordinates; it keeps the Jacobian's components along
the directions in which the data varies, the only ones data ever probes.  Signs are fixed
(largest-magnitude entry of each vector positive) so the basis is reproducible.  When
``P >= D`` no projection is needed: the basis is the identity (pixels are the coordinates;
digits: ``D = 64``).  A batch spans at most ``B`` directions, so ``P`` is clamped to ``B``.
The published per-matrix projection is there as ``projection="svd"`` (:func:`svd_features`:
the top ``P`` columns of ``U_k S_k``, signs fixed the same way, zero-padded to the shared
basis's width), so the paper's features can be measured beside the shared basis.
Magnitudes are kept raw (float32): the scale of a Jacobian says something about the
architecture, and the encoder normalises it.

**Cost.**  One forward and one input-only backward per initialisation, plus building the
network; initialisations run one after another (``torch.func.vmap`` over stacked
initialisations is slower on CPU: batched weights become grouped convolutions).
Run with one torch thread per process (Ray workers do, see :mod:`predictors.jacobian_store`).

**Determinism.**  Initialisation ``k`` draws from torch's RNG seeded by ``(seed, k)``
(:func:`init_seed`) inside a forked RNG state, so the caller's RNG is untouched and the same
architecture gives the same features for the same seed.  Architectures are built in their
canonical form (``space.canonical``), so isomorphic cells give identical features.
"""
from __future__ import annotations

import contextlib
import types
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raynas.arch import Arch
from raynas.data import ImageDataset, as_dataset
from search_spaces import SearchSpace, as_space
from search_spaces.base import check_choice

ModelSource = Callable[[], nn.Module] | Arch | str


def init_seed(seed: int, index: int) -> int:
    """Torch seed of initialisation ``index`` under ``seed`` (independent streams per pair)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def input_batch(dataset: str | ImageDataset, batch_size: int = 256, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``batch_size`` normalised images of ``split`` (a seeded random subset), ``B x C x H x W``.

    ``dataset`` is a spec for :func:`raynas.data.load_dataset` (``"digits"``,
    ``"cifar10:/path"``, ...) or an already loaded :class:`~raynas.data.ImageDataset`.
    """
    return as_dataset(dataset).sample(batch_size, split, seed)[0]


def svd_basis(matrix: np.ndarray | torch.Tensor, dim: int) -> np.ndarray:
    """Top-``dim`` right singular vectors of ``matrix`` (``n x D``) as a ``D x P`` float32 basis.

    ``P = D`` (the identity) when ``dim >= D``; otherwise ``P = min(dim, n)``.  The sign of each
    vector is fixed so that its largest-magnitude entry is positive.
    """
    m = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"svd_basis needs an n x D matrix, got shape {m.shape}")
    if int(dim) < 1:
        raise ValueError(f"projection dimension P must be >= 1, got {dim}")
    n, d = m.shape
    if dim >= d:
        return np.eye(d, dtype=np.float32)
    _, _, vt = np.linalg.svd(m, full_matrices=False)
    v = vt[: min(dim, n)].T
    pivot = np.abs(v).argmax(axis=0)
    v = v * np.sign(v[pivot, np.arange(v.shape[1])])
    return np.ascontiguousarray(v, dtype=np.float32)


PROJECTIONS = ("input", "svd")


def check_projection(projection: str) -> str:
    """``"input"`` (the shared input basis) or ``"svd"`` (each matrix's own, as published)."""
    return check_choice("projection", projection, PROJECTIONS)


def svd_features(jacobian: torch.Tensor, width: int) -> torch.Tensor:
    """Per-matrix projection (Hesslow & Poli): the top ``width`` columns of ``U S`` of this
    ``B x D`` matrix (``J = U S V^T``), each column's largest-magnitude entry positive; zero
    columns pad it to ``width`` when ``J`` has fewer than ``width`` singular values."""
    u, s, _ = torch.linalg.svd(jacobian.double(), full_matrices=False)
    us = u[:, :width] * s[:width]
    sign = torch.sign(us[us.abs().argmax(dim=0), torch.arange(us.shape[1])])
    us = us * torch.where(sign == 0, 1.0, sign)
    return F.pad(us, (0, width - us.shape[1])).float()


def project_jacobian(jacobian: torch.Tensor, basis: torch.Tensor, projection: str = "input") -> torch.Tensor:
    """``B x P`` features of a ``B x D`` Jacobian: onto the shared ``D x P`` ``basis``, or its
    own top ``P`` singular directions (``projection="svd"``; ``basis`` fixes ``P``)."""
    if check_projection(projection) == "svd":
        return svd_features(jacobian, basis.shape[1])
    return jacobian @ basis


def input_basis(inputs: torch.Tensor, dim: int = 128) -> np.ndarray:
    """The shared projection basis of a batch: :func:`svd_basis` of the flattened images."""
    return svd_basis(inputs.reshape(len(inputs), -1), dim)


def _batch_stats_forward(self: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm with this batch's statistics as constants: rows stay independent."""
    with torch.no_grad():  # the native kernel's statistics: faster than torch.var_mean on N x C x H x W
        _, mean, invstd = torch.ops.aten.native_batch_norm(x, None, None, None, None, True, 0.0, self.eps)
    return F.batch_norm(x, mean, invstd.pow(-2) - self.eps, self.weight, self.bias, False, 0.0, self.eps)


@contextlib.contextmanager
def row_separable(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode, BatchNorm on detached batch statistics, parameters frozen;
    everything is put back on exit."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    for m in norms:
        m.forward = types.MethodType(_batch_stats_forward, m)
    model.eval().requires_grad_(False)
    try:
        yield model
    finally:
        for m in norms:
            del m.forward
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


def data_jacobian(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``B x D`` gradient of the summed logits with respect to each image, in one backward."""
    x = inputs.detach().float().requires_grad_(True)
    with row_separable(model), torch.enable_grad():
        logits = model(x)
        if logits.dim() != 2 or logits.shape[0] != len(x):
            raise ValueError(f"model must map {len(x)} images to N x classes logits, got shape {tuple(logits.shape)}")
        if not logits.requires_grad:  # the output ignores its input (constant network)
            return torch.zeros(len(x), x[0].numel(), device=x.device)
        (grad,) = torch.autograd.grad(logits.sum(), x)
    return grad.reshape(len(x), -1)


def model_factory(
    model: ModelSource,
    space: SearchSpace | str | None = None,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (3, 32, 32),
    build: Mapping[str, Any] | None = None,
) -> Callable[[], nn.Module]:
    """A zero-argument constructor of fresh networks for ``model``.

    ``model`` is a factory (returned as is), or an Arch / arch string of ``space``, built in its
    canonical form with ``space.build(arch, num_classes, in_shape, **build)``.
    """
    if isinstance(model, nn.Module):
        raise ValueError(
            "pass a factory such as `lambda: MyNet()` rather than a module instance: every "
            "initialisation needs a freshly built network"
        )
    if not isinstance(model, (Arch, str)):
        if not callable(model):
            raise ValueError(f"model must be an Arch, an arch string or a factory of nn.Modules, got {type(model).__name__}")
        return model
    if space is None:
        raise ValueError("an Arch or arch string needs its search space: pass space=... (an object or a registered name)")
    space = as_space(space)
    arch = space.canonical(space.as_arch(model))
    options = dict(build or {})
    return lambda: space.build(arch, num_classes=num_classes, in_shape=in_shape, **options)


def resolve_basis(proj: int | np.ndarray | torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``D x P`` projection basis: :func:`input_basis` of ``inputs`` for an int, else ``proj``."""
    d = inputs[0].numel()
    if isinstance(proj, (int, np.integer)):
        return torch.from_numpy(input_basis(inputs, int(proj)))
    basis = proj.float() if isinstance(proj, torch.Tensor) else torch.from_numpy(np.array(proj, dtype=np.float32))
    if basis.dim() != 2 or basis.shape[0] != d or basis.shape[1] < 1:
        raise ValueError(f"projection basis must be D x P with D = {d} (the image size) and P >= 1, got {tuple(basis.shape)}")
    return basis


def jacobian_features(
    model: ModelSource,
    space: SearchSpace | str | None = None,
    *,
    inputs: torch.Tensor,
    num_inits: int = 4,
    proj: int | np.ndarray | torch.Tensor = 128,
    seed: int = 0,
    num_classes: int = 10,
    build: Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
    projection: str = "input",
) -> np.ndarray:
    """Projected data Jacobians of ``num_inits`` initialisations: float32 ``K x B x P``.

    Args:
        model: an Arch or arch string of ``space``, or a factory returning a fresh nn.Module.
        space: the search space (object or registered name) when ``model`` is an architecture.
        inputs: the fixed normalised batch, ``B x C x H x W`` (see :func:`input_batch`).
        num_inits: ``K``, independent random initialisations.
        proj: ``P`` (project onto :func:`input_basis` of ``inputs``) or an explicit ``D x P`` basis;
            pass the same basis for every architecture you want to compare.
        seed: initialisation ``k`` is seeded by :func:`init_seed` ``(seed, k)``.
        num_classes: classifier width of built architectures.
        build: keyword options of ``space.build`` (e.g. ``{"C": 8, "N": 1}`` for NB201).
        device: where the networks run (built on the CPU, so every device initialises alike).
        projection: ``"input"`` (onto the shared basis) or ``"svd"`` (each matrix's own top
            singular directions, as published; the basis then only fixes ``P``).
    """
    if num_inits < 1:
        raise ValueError(f"num_inits must be >= 1, got {num_inits}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4 or len(inputs) == 0:
        raise ValueError("inputs must be a non-empty B x C x H x W tensor (see input_batch)")
    if isinstance(proj, (int, np.integer)) and proj < 1:
        raise ValueError(f"projection dimension P must be >= 1, got {proj}")
    check_projection(projection)
    factory = model_factory(model, space, num_classes, tuple(inputs.shape[1:]), build)
    device = torch.device(device)
    basis = resolve_basis(proj, inputs).to(device)
    inputs = inputs.to(device)
    out = torch.empty((num_inits, len(inputs), basis.shape[1]), dtype=torch.float32, device=device)
    for k in range(num_inits):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed(seed, k))
            net = factory()
        out[k] = project_jacobian(data_jacobian(net.to(device), inputs), basis, projection)
    return out.cpu().numpy()
