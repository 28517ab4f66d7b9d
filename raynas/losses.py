"""Contrastive losses shared by the Jacobian set encoder, the CG encoder's pre-training and
label-free architecture training."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR) of ``N`` positive pairs.

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; each of the ``2N``
    projections is classified against the other ``2N - 1`` by cosine similarity / temperature.
    """
    if z1.shape != z2.shape or z1.dim() != 2 or len(z1) < 1:
        raise ValueError(f"z1 and z2 must both be N x D with N >= 1, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n, device=z.device), torch.arange(n, device=z.device)])
    return F.cross_entropy(logits, target)
