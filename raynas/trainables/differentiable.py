"""Differentiable one-shot search (DARTS, GDAS, DrNAS) as a Tune trainable.

A trial trains the mixed-op relaxation of one supernet (:mod:`raynas.trainables.mixed_net`):
per batch, one Adam step on the architecture weights (alpha) against a ``valid`` batch, then
one SGD step on the network weights against a ``train`` batch (DARTS' alternation).  Every
epoch it derives the discrete cell (an ordinary ``Arch`` of the space) and reports it as
``arch`` with ``skip_count`` (the skip-connection collapse DARTS is known for on NB201) and,
given a benchmark table, the table's accuracy of that cell (``table_acc``), so Tune's
schedulers stop trials on any of them and ``raynas train`` retrains the derived cells.

Methods (``method``): ``darts`` (softmax weights; ``order=2``: the unrolled second-order
gradient of Liu et al. 2019), ``gdas`` (Dong & Yang 2019: one Gumbel-softmax sample per step,
only the sampled op of each edge runs, straight-through gradient; temperature annealed
``tau_max`` -> ``tau_min``) and ``drnas`` (Chen et al. 2021: edge weights drawn from
Dirichlet(elu(alpha) + 1), pathwise gradients, a KL regulariser towards Dirichlet(1)).
Remedies for the collapse besides DrNAS: ``skip_stop`` (DARTS+, Liang et al. 2019) ends the
search once the derived cell holds that many skip-connections; ``arch_warmup`` (PC-DARTS, DrNAS)
trains only the network weights for the first epochs, before parameter-free ops can win.
"""
from __future__ import annotations

import os
import time
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from raynas.arch import Arch
from raynas.data import ImageDataset, as_dataset
from raynas.devices import autocast, check_precision, grad_scaler, trial_device
from raynas.trainables.base import ReconfigurableTrainable
from raynas.trainables.loop import lr_schedule, sgd, train_epoch
from raynas.trainables.mixed_net import MixedOpNetwork, derive, skip_count, weight_shapes
from raynas.trainables.settings import DifferentiableSettings
from search_spaces import as_space

EVAL_BATCH = 256
Weights = tuple[list[torch.Tensor], list[torch.Tensor] | None]  # edge weights, GDAS' active op per edge


class ArchWeights(nn.Module):
    """The architecture parameters (one ``(edges, ops)`` matrix per cell type, DARTS' 1e-3
    scaled normal initialisation) and how ``method`` turns them into edge weights."""

    def __init__(self, space: str, method: str):
        super().__init__()
        self.method = method
        self.alphas = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(shape)) for shape in weight_shapes(space))

    def concentrations(self) -> list[torch.Tensor]:
        """DrNAS' Dirichlet concentrations, all > 0."""
        return [F.elu(a) + 1 for a in self.alphas]

    def probs(self) -> list[torch.Tensor]:
        """Expected edge weights: the softmax of alpha, or for DrNAS the Dirichlet mean."""
        if self.method == "drnas":
            return [b / b.sum(-1, keepdim=True) for b in self.concentrations()]
        return [a.softmax(-1) for a in self.alphas]

    def sample(self, tau: float) -> Weights:
        """The edge weights of one training step (differentiable in alpha)."""
        if self.method == "drnas":
            return [torch.distributions.Dirichlet(b).rsample() for b in self.concentrations()], None
        if self.method == "gdas":
            pairs = [_gumbel_hard(a, tau) for a in self.alphas]
            return [w for w, _ in pairs], [i for _, i in pairs]
        return self.probs(), None

    def expected(self) -> Weights:
        """The weights evaluation uses: the expected weights, for GDAS the argmax path."""
        if self.method != "gdas":
            return self.probs(), None
        active = [a.argmax(-1) for a in self.alphas]
        return [F.one_hot(i, a.shape[-1]).to(a.dtype) for i, a in zip(active, self.alphas)], active

    def regulariser(self, scale: float) -> torch.Tensor:
        """DrNAS' ``scale * sum KL(Dirichlet(beta) || Dirichlet(1))`` (0 for the other methods)."""
        if self.method != "drnas" or scale == 0:
            return torch.zeros((), device=self.alphas[0].device)
        kl = [torch.distributions.kl_divergence(torch.distributions.Dirichlet(b),
                                                torch.distributions.Dirichlet(torch.ones_like(b))).sum()
              for b in self.concentrations()]  # fmt: skip
        return scale * torch.stack(kl).sum()

    def entropy(self) -> float:
        """Mean entropy (nats) of the edges' expected weights: near log(ops) undecided, 0 decided."""
        with torch.no_grad():
            return float(torch.cat([-(p * p.clamp_min(1e-12).log()).sum(-1) for p in self.probs()]).mean())


def _gumbel_hard(alpha: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GDAS' sample: one-hot of argmax((log_softmax(alpha) + Gumbel) / tau) with the soft
    sample's gradient (straight-through), and the chosen op of each edge."""
    log_p = alpha.log_softmax(-1)
    while True:  # as GDAS: redraw the rare sample whose Gumbel noise overflowed
        gumbel = -torch.empty_like(alpha).exponential_().log()
        soft = ((log_p + gumbel) / tau).softmax(-1)
        if torch.isfinite(soft).all():
            break
    index = soft.argmax(-1)
    hard = F.one_hot(index, alpha.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft, index


def _cycle(data: ImageDataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled ``valid`` batches without end (the valid split may be smaller than the train split)."""
    while True:
        yield from data.batches("valid", batch_size, True, False, generator)


class DifferentiableTrainable(ReconfigurableTrainable):
    """One differentiable search of ``config["space"]`` ("nb201" or "darts"), one epoch per step.

    Config: the :class:`DifferentiableSettings` keys.  Reports ``epoch``, ``train_loss``,
    ``val_acc`` (the relaxed supernet's accuracy on the split alpha trains on), ``arch`` (the
    derived cell), ``skip_count``, ``alpha_entropy``, ``table_acc`` (with ``benchmark``),
    ``tau`` (GDAS), ``stopped_early`` (DARTS+), ``params`` and timings.  Checkpoints hold
    both sets of weights, both optimisers, the schedule and every RNG state.
    """

    def _configure(self, config: dict[str, Any]) -> None:
        self.settings = s = DifferentiableSettings.from_config(config)
        self.space = self.inputs.get("space") or as_space(s.space)
        self.device = trial_device(s.device)
        self.precision = check_precision(s.precision, self.device)
        self.data = as_dataset(self.inputs.get("data") or s.dataset).to(self.device)
        torch.manual_seed(s.seed)
        self.generator = torch.Generator(self.device).manual_seed(s.seed)
        self.model = MixedOpNetwork(self.space.name, self.data.num_classes, self.data.in_shape, s.build, s.bn_affine)
        self.model.to(self.device)
        self.alpha = ArchWeights(self.space.name, s.method).to(self.device)
        self.optimizer = sgd(self.model, s)
        self.scheduler = lr_schedule(self.optimizer, s)
        self.arch_optimizer = torch.optim.Adam(self.alpha.parameters(), lr=s.arch_lr, betas=(0.5, 0.999),
                                               weight_decay=s.arch_weight_decay)  # fmt: skip
        self.scaler = grad_scaler(self.device, self.precision)
        self.table = None
        if s.benchmark:  # one table per process, however many trials ask for it
            from raynas.trainables.benchmark import load_benchmark

            self.table = load_benchmark(os.path.expanduser(s.benchmark), self.space.name, s.benchmark_dataset)
        self.epoch = 0

    # ------------------------------------------------------------------ results
    def derived(self) -> Arch:
        """The discrete architecture of the current architecture weights."""
        return derive(self.space, [p.detach().cpu() for p in self.alpha.probs()])

    def tau(self) -> float:
        """GDAS' temperature of the current epoch: linear from ``tau_max`` to ``tau_min``."""
        s = self.settings
        return s.tau_max - (s.tau_max - s.tau_min) * self.epoch / max(1, s.epochs - 1)

    def step(self) -> dict[str, Any]:
        start = time.perf_counter()
        s = self.settings
        tau = self.tau()
        loss = self._train_epoch(tau)
        self.scheduler.step()
        self.epoch += 1
        arch = self.derived()
        skips = skip_count(arch)
        result: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": loss,
            "val_acc": self.accuracy("valid"),
            "arch": str(arch),
            "skip_count": skips,
            "alpha_entropy": self.alpha.entropy(),
            "params": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "node_id": self.node_id,
        }
        if s.method == "gdas":
            result["tau"] = tau
        if self.table is not None:
            result["table_acc"] = self.table.query(arch, "test")
        stop = s.skip_stop > 0 and skips >= s.skip_stop
        result["stopped_early"] = bool(stop and self.epoch < s.epochs)
        result["epoch_time_s"] = time.perf_counter() - start
        result["done"] = stop or self.epoch >= s.epochs
        return result

    @torch.no_grad()
    def accuracy(self, split: str) -> float:
        """Accuracy (percent) on ``split`` of the supernet under the expected edge weights."""
        weights, active = self.alpha.expected()
        self.model.eval()
        correct = 0
        with autocast(self.device, self.precision):
            for x, y in self.data.batches(split, EVAL_BATCH):
                correct = correct + (self.model(x, weights, active).argmax(1) == y).sum()
        return 100.0 * int(correct) / self.data.size(split)

    # ------------------------------------------------------------------ training
    def _train_epoch(self, tau: float) -> float:
        s = self.settings
        valid = _cycle(self.data, s.batch_size, self.generator)
        batches = self.data.batches("train", s.batch_size, True, s.augment, self.generator, s.data_portion)

        arch_steps = self.epoch >= s.arch_warmup

        def batch_loss(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
            x, y = batch
            if arch_steps:
                self._arch_step(x, y, *next(valid), tau)
            weights, active = self.alpha.sample(tau)
            return F.cross_entropy(self.model(x, [w.detach() for w in weights], active), y), len(y)

        def where(batch: int | None) -> str:
            at = f"epoch {self.epoch + 1}" + (f", batch {batch}" if batch is not None else "")
            return f"{at} of {s.method} on the {self.space.name} supernet with lr={s.lr}, arch_lr={s.arch_lr}"

        return train_epoch(self.model, self.optimizer, batches, batch_loss, s.grad_clip, where, self.device,
                           self.precision, self.scaler)  # fmt: skip

    def _arch_step(self, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, tau: float) -> None:
        """One Adam step on alpha against the valid batch ``(xv, yv)`` (the train batch for
        the second-order gradient's virtual step)."""
        alphas = list(self.alpha.parameters())
        if self.settings.order == 2:
            grads = self._unrolled_grads(x, y, xv, yv)
        else:
            weights, active = self.alpha.sample(tau)
            loss = F.cross_entropy(self.model(xv, weights, active), yv) + self.alpha.regulariser(self.settings.drnas_reg)
            grads = list(torch.autograd.grad(loss, alphas))
        for a, g in zip(alphas, grads):
            a.grad = g
        self.arch_optimizer.step()

    def _unrolled_grads(self, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> list[torch.Tensor]:
        """DARTS' second-order gradient: d/d alpha of L_val(w - xi * dL_train/dw, alpha), with
        xi the current learning rate and the Hessian-vector product by central differences
        (eps = 0.01 / |dL_val/dw'|), the virtual step taking the optimiser's momentum and weight decay."""
        from torch.func import functional_call

        s = self.settings
        names, params = zip(*self.model.named_parameters())
        alphas = list(self.alpha.parameters())
        xi = self.optimizer.param_groups[0]["lr"]

        def loss_at(values: Sequence[torch.Tensor], images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            weights, _ = self.alpha.sample(0.0)
            return F.cross_entropy(functional_call(self.model, dict(zip(names, values)), (images, weights)), labels)

        def grads(loss: torch.Tensor, wrt: Sequence[torch.Tensor]) -> list[torch.Tensor]:
            found = torch.autograd.grad(loss, list(wrt), allow_unused=True)
            return [torch.zeros_like(t) if g is None else g for g, t in zip(found, wrt)]

        virtual = []
        for p, g in zip(params, grads(loss_at(params, x, y), params)):
            move = g + s.weight_decay * p.detach()
            buffer = self.optimizer.state.get(p, {}).get("momentum_buffer")
            if buffer is not None:
                move = move + s.momentum * buffer
            virtual.append((p.detach() - xi * move).requires_grad_())
        found = grads(loss_at(virtual, xv, yv), alphas + virtual)
        d_alpha, d_w = found[: len(alphas)], found[len(alphas) :]
        eps = 0.01 / torch.cat([g.flatten() for g in d_w]).norm().clamp_min(1e-12)
        plus = grads(loss_at([p.detach() + eps * g for p, g in zip(params, d_w)], x, y), alphas)
        minus = grads(loss_at([p.detach() - eps * g for p, g in zip(params, d_w)], x, y), alphas)
        return [da - xi * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, plus, minus)]

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(
            {
                "model": self.model.state_dict(),
                "alpha": self.alpha.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "arch_optimizer": self.arch_optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch,
                "arch": str(self.derived()),
                "torch_rng": torch.get_rng_state(),
                "data_rng": self.generator.get_state(),
                "scaler": self.scaler.state_dict(),
            },
            os.path.join(checkpoint_dir, "differentiable.pt"),
        )

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        state = torch.load(os.path.join(str(checkpoint), "differentiable.pt"), weights_only=False, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.alpha.load_state_dict(state["alpha"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        torch.set_rng_state(state["torch_rng"].cpu())
        self.generator.set_state(state["data_rng"])
        self.scaler.load_state_dict(state["scaler"])
