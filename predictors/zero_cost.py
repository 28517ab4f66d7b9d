"""Zero-cost proxies: rank untrained networks from one batch, as NASLib defines them.

Every proxy scores a freshly initialised ``nn.Module`` (any space's, or a user's own) on one
batch ``x`` (labels ``y`` where a loss is needed).  The network is a deep copy in training
mode (BatchNorm on batch statistics, as NASLib scores its fresh networks), so the caller's
model, its gradients and its running statistics are untouched.  "Weighted layers" are the
convolution and linear layers.

* ``synflow``: ``log(1 + sum |theta * dR/dtheta|)`` over weighted layers, where
  ``R = sum f(1)`` is the output of the network with BatchNorm bypassed and every parameter
  replaced by its absolute value, on one all-ones input, in float64 (so products of
  hundreds of layers do not overflow).  Independent of the data.  NASLib reports the log of
  the sum; ``log1p`` keeps the ranking and maps an all-zero network to 0.
* ``jacov``: with ``J`` the gradients of the summed outputs w.r.t. each input and ``v`` the
  eigenvalues of the row-correlation matrix of ``J``,
  ``-sum(log(v + k) + 1 / (v + k))``, ``k = 1e-5``.  At most ``-B`` (uncorrelated rows).
* ``snip``: ``sum |g * w|`` and ``grad_norm``: ``sum_layers ||g||_2``, with ``g`` the
  cross-entropy gradient of each weight.
* ``fisher``: per output channel ``0.5 * mean_b (sum_spatial a * da)^2`` of each weighted
  layer's output ``a``, times the weights feeding that channel (NASLib spreads each channel's
  value over its weights before summing).
* ``naswot`` (alias ``nwot``): ``log|det K|`` with
  ``K_ij = sum_units [c_i = c_j]`` over the binary patterns ``c = (input > 0)`` of every
  ``nn.ReLU`` module (the Hamming-similarity kernel of "NAS without training").
* ``params``: the parameter count; ``flops``: multiply-accumulates of one image, from
  :func:`raynas.graph.trace` (as :func:`raynas.trainables.standalone.count_flops`).

**Non-finite scores.**  Proxies never return NaN.  ``naswot`` is ``-inf`` when ``K`` is
singular (two images share every activation pattern) and ``jacov`` is ``-inf`` when some
image's Jacobian is constant (the output ignores that input, e.g. an NB201 cell whose output
is unreachable); both mean "worst", as NASLib's -1e8 does.  ``synflow`` is ``inf`` only if
float64 overflows.  A batch with NaN or inf entries is rejected with ``ValueError``.

**Cost.**  One forward (``naswot``), one forward and one backward (``synflow`` on one image,
``jacov``, and ``snip``/``grad_norm``/``fisher`` together when asked for in one
:func:`scores` call); every image of the batch goes through the network at once.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raynas.arch import Arch
from raynas.data import ImageDataset, as_dataset
from search_spaces import SearchSpace, as_space

PROXIES: tuple[str, ...] = ("synflow", "jacov", "snip", "grad_norm", "naswot", "fisher", "params", "flops")
ALIASES: dict[str, str] = {"nwot": "naswot"}
#: proxies that share one cross-entropy forward/backward
LOSS_PROXIES: tuple[str, ...] = ("snip", "grad_norm", "fisher")
JACOV_K = 1e-5


def proxy_name(proxy: str) -> str:
    """Canonical name of ``proxy``; ValueError naming the allowed ones otherwise."""
    name = ALIASES.get(proxy, proxy)
    if name not in PROXIES:
        raise ValueError(f"unknown zero-cost proxy {proxy!r}; allowed: {list(PROXIES) + list(ALIASES)}")
    return name


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """Convolution and linear layers: the ones NASLib's per-weight proxies sum over."""
    return [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]


def _fresh_copy(model: nn.Module) -> nn.Module:
    """A trainable copy in training mode, so scoring never touches the caller's model."""
    return copy.deepcopy(model).train().requires_grad_(True)


def _check_batch(x: torch.Tensor, y: torch.Tensor | None, needs_labels: bool) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) < 1:
        raise ValueError("batch_x must be a tensor with a batch dimension first, e.g. B x C x H x W")
    if not torch.isfinite(x).all():
        raise ValueError("batch_x holds NaN or inf entries; zero-cost proxies need a finite batch")
    if needs_labels and (y is None or y.shape != (len(x),)):
        raise ValueError(f"snip, grad_norm and fisher need batch_y: {len(x)} integer class labels")


def _logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    if out.dim() != 2 or out.shape[0] != len(x):
        raise ValueError(f"model must map {len(x)} inputs to N x classes outputs, got shape {tuple(out.shape)}")
    return out


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def synflow(model: nn.Module, x: torch.Tensor) -> float:
    """log1p of the synaptic flow (module docstring); only ``x``'s shape is used."""
    net = _fresh_copy(model).double()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.forward = _identity  # NASLib's synflow runs without BatchNorm
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = [m.weight for m in weighted_layers(net)]
    out = _logits(net, torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    with torch.no_grad():
        total = sum(float((w * g).abs().sum()) for w, g in zip(weights, grads) if g is not None)
    return math.log1p(total)


def jacov(model: nn.Module, x: torch.Tensor) -> float:
    """Jacobian-covariance score; ``-inf`` when an image's Jacobian is constant."""
    net = _fresh_copy(model)
    inputs = x.detach().float().clone().requires_grad_(True)
    out = _logits(net, inputs)
    if not out.requires_grad:
        return -math.inf
    (grad,) = torch.autograd.grad(out.sum(), inputs)
    jac = grad.reshape(len(x), -1).double().numpy()
    if len(x) < 2 or (jac.std(axis=1) == 0).any():
        return -math.inf
    eig = np.linalg.eigvalsh(np.corrcoef(jac)).clip(min=0.0)  # PSD: negatives are round-off
    return float(-np.sum(np.log(eig + JACOV_K) + 1.0 / (eig + JACOV_K)))


def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """log|det K| of the ReLU pattern kernel; ``-inf`` when K is singular."""
    net = _fresh_copy(model)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError("naswot reads the inputs of nn.ReLU modules; this model has none")
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)

    def accumulate(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes = (inputs[0].reshape(len(x), -1) > 0).float()
        agree = (codes @ codes.T).double()  # both on; exact: counts < 2^24
        on = agree.diagonal()
        kernel.add_(2 * agree - on[:, None] - on[None, :] + codes.shape[1])  # + both off

    hooks = [m.register_forward_pre_hook(accumulate) for m in relus]  # pre: inplace-safe
    try:
        with torch.no_grad():
            _logits(net, x.detach().float())
    finally:
        for h in hooks:
            h.remove()
    return float(np.linalg.slogdet(kernel.numpy())[1])


def loss_proxies(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: Iterable[str] = LOSS_PROXIES
) -> dict[str, float]:
    """snip, grad_norm and fisher from one cross-entropy forward and backward."""
    names = [proxy_name(n) for n in names]
    net = _fresh_copy(model)
    layers = weighted_layers(net)
    outputs: list[tuple[nn.Module, torch.Tensor]] = []  # fisher reads each layer's output

    def keep(layer: nn.Module, _: Any, out: torch.Tensor) -> None:
        outputs.append((layer, out))

    hooks = [m.register_forward_hook(keep) for m in layers] if "fisher" in names else []
    try:
        loss = F.cross_entropy(_logits(net, x.detach().float()), y.long())
    finally:
        for h in hooks:
            h.remove()
    weights = [m.weight for m in layers]
    grads = torch.autograd.grad(loss, weights + [out for _, out in outputs], allow_unused=True)
    wgrads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
    with torch.no_grad():
        result = {
            "snip": sum(float((g * w).abs().sum()) for w, g in zip(weights, wgrads)),
            "grad_norm": sum(float(g.norm()) for g in wgrads),
            "fisher": _fisher(outputs, grads[len(weights):]),
        }
    return {n: result[n] for n in names}


def _fisher(outputs: Sequence[tuple[nn.Module, torch.Tensor]], grads: Sequence[torch.Tensor | None]) -> float:
    """Sum over layer calls of per-channel Fisher information times weights per channel."""
    total = 0.0
    for (layer, act), grad in zip(outputs, grads):
        if grad is None:
            continue
        g = (act * grad).flatten(2).sum(2) if act.dim() > 2 else act * grad  # B x channels
        per_channel = 0.5 * g.pow(2).mean(0)
        total += float(per_channel.sum()) * layer.weight.numel() / act.shape[1]
    return total


def params(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


def flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one input of ``x``'s shape, from the traced graph."""
    from raynas.graph import trace

    return int(trace(model, (1, *x.shape[1:])).flops)


_SINGLE: dict[str, Callable[[nn.Module, torch.Tensor], float]] = {
    "synflow": synflow, "jacov": jacov, "naswot": naswot, "flops": flops,
    "params": lambda model, _: params(model),
}  # fmt: skip


def scores(
    model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor | None, proxies: Iterable[str]
) -> dict[str, float]:
    """Several proxies of one network on one batch; the loss proxies share one backward."""
    names = list(dict.fromkeys(proxy_name(p) for p in proxies))
    wanted_loss = [n for n in names if n in LOSS_PROXIES]
    _check_batch(batch_x, batch_y, bool(wanted_loss))
    with torch.enable_grad():
        found = loss_proxies(model, batch_x, batch_y, wanted_loss) if wanted_loss else {}
        found.update({n: float(_SINGLE[n](model, batch_x)) for n in names if n not in LOSS_PROXIES})
    return {n: found[n] for n in names}


def score(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor | None, proxy: str) -> float:
    """One zero-cost proxy (see the module docstring) of ``model`` on ``batch_x``/``batch_y``."""
    return scores(model, batch_x, batch_y, [proxy])[proxy_name(proxy)]


def proxy_batch(
    dataset: str | ImageDataset,
    batch_size: int = 64,
    in_shape: Sequence[int] | None = None,
    split: str = "train",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of normalised images and labels, resized to ``in_shape`` if given.

    The images are the ones :meth:`~raynas.data.ImageDataset.sample` picks for the same seed
    (as for Jacobian features).  Resizing is bilinear; a greyscale batch is repeated over the channels (so 8x8 digits can
    feed the 3 x 32 x 32 NB201 CIFAR network).
    """
    x, y = as_dataset(dataset).sample(batch_size, split, seed)
    return (x if in_shape is None else resize(x, tuple(in_shape))), y


def resize(x: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    """``x`` (B x C x H x W) as B x ``in_shape``: bilinear resize, greyscale repeated to colour."""
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (channels, height, width), got {in_shape}")
    c, h, w = in_shape
    if x.shape[1] not in (1, c):
        raise ValueError(f"cannot turn {x.shape[1]}-channel images into {c} channels (only 1 -> C is allowed)")
    if tuple(x.shape[2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x.expand(-1, c, -1, -1).contiguous()


ModelLike = nn.Module | Callable[[], nn.Module] | Arch | str


class ZeroCostPredictor:
    """A zero-cost proxy behind the predictor interface: ``fit`` is a no-op, ``predict`` scores.

    Architectures are built as given, not canonicalised: dead edges keep their parameters, as
    in the benchmark tables' ``params`` and ``flops``.  Each is initialised from ``seed``.

    Args:
        proxy: one of :data:`PROXIES` (or an alias in :data:`ALIASES`).
        space: search space (object or registered name) for Arch / arch-string inputs.
        dataset: dataset spec or :class:`~raynas.data.ImageDataset` giving the batch.
        batch_size: images in the batch (NASLib's NB201 table used 32: its jacov is at most -32).
        num_classes: classifier width of built architectures (default: the dataset's).
        in_shape: network input shape; the batch is resized to it (default: the dataset's).
        seed: picks the batch and seeds each architecture's initialisation.
        build: keyword options of ``space.build`` (e.g. ``{"C": 16, "N": 5}`` for NB201).
        device: where the networks are scored (built on the CPU, so every device initialises alike).
    """

    def __init__(
        self,
        proxy: str,
        space: SearchSpace | str | None = None,
        dataset: str | ImageDataset = "digits",
        batch_size: int = 64,
        num_classes: int | None = None,
        in_shape: Sequence[int] | None = None,
        seed: int = 0,
        build: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ):
        self.proxy = proxy_name(proxy)
        self.device = torch.device(device)
        self.space = as_space(space)
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.in_shape = None if in_shape is None else tuple(in_shape)
        self.seed = seed
        self.build = dict(build or {})
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._classes = num_classes

    def fit(self, archs: Sequence[Any] | None = None, y: Any = None) -> "ZeroCostPredictor":
        """No-op: a zero-cost proxy learns nothing.  Kept so every predictor fits the same loop."""
        return self

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (cached) scoring batch."""
        if self._batch is None:
            data = as_dataset(self.dataset)
            self._classes = self.num_classes or data.num_classes
            x, y = proxy_batch(data, self.batch_size, self.in_shape, seed=self.seed)
            self._batch = x.to(self.device), y.to(self.device)
        return self._batch

    def model(self, item: ModelLike) -> nn.Module:
        """The network to score: a module as is, a factory called, an arch built (seeded)."""
        if isinstance(item, nn.Module):
            return item.to(self.device)
        x, _ = self.batch()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if isinstance(item, (Arch, str)):
                if self.space is None:
                    raise ValueError("Arch or arch-string inputs need space=... (an object or a registered name)")
                arch = self.space.as_arch(item)
                return self.space.build(arch, num_classes=self._classes, in_shape=tuple(x.shape[1:]), **self.build).to(self.device)
            if callable(item):
                return item().to(self.device)
        raise ValueError(f"predict takes nn.Modules, model factories, Archs or arch strings; got {type(item).__name__}")

    def predict(self, archs: Sequence[ModelLike]) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``: the proxy score of each item, and zeros (a proxy has no spread)."""
        x, y = self.batch()
        mean = np.array([score(self.model(a), x, y, self.proxy) for a in archs], dtype=np.float64)
        return mean, np.zeros_like(mean)
