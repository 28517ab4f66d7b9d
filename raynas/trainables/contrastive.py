"""Contrastive training parts: backbone + projection head, the two losses, the kNN probe.

* :class:`ContrastiveModel`: a space's network with its classifier replaced by the identity
  (the *backbone*, whose pooled features are the representation) and SimCLR's projection
  head ``g`` (Linear-BatchNorm-ReLU-Linear) that the loss sees.  The loss module is a
  sub-module, so one ``state_dict`` holds everything a checkpoint needs, memory bank included.
* :class:`NTXentLoss`: SimCLR.  The two views of an image are a positive pair, the other
  ``2N - 2`` views of the batch negatives (:func:`raynas.losses.nt_xent`).
* :class:`MemoryBankNCE`: non-parametric instance discrimination (Wu et al. 2018).  A bank
  ``V`` holds one unit vector per training image; each view ``v`` of image ``i`` is
  classified as instance ``i`` against ``K`` other bank entries ``j_1..j_K`` drawn uniformly:

  .. math::
      -\\log \\frac{\\exp(v \\cdot V_i / \\tau)}{\\exp(v \\cdot V_i / \\tau) + \\sum_k \\exp(v \\cdot V_{j_k} / \\tau)},

  the sampled-softmax (InfoNCE) form of the paper's NCE, as MoCo and CMC use it; with
  ``K >= N - 1`` it is the paper's exact non-parametric softmax.  The paper's binary NCE with
  its normaliser ``Z`` frozen after the first batch diverged on digits (the loss rose every
  epoch: the bank's similarities soon exceed those ``Z`` was fitted to).  After each step
  ``V_i`` becomes the normalised ``m V_i + (1 - m) v`` (an exponential moving average; ``v``
  the mean of the image's two views).
* :class:`ImagePatchNCE`: CSNAS's loss (Nguyen & Chang 2021, after PIRL, Misra & van der
  Maaten 2020), two branches against one bank of *image* representations: the image branch
  ``f`` (one lightly augmented view: flips only, where the dataset allows them) and the patch branch ``g``
  (``P`` augmented views, each through the same backbone and head, concatenated and merged by
  a linear layer).  With ``m_i`` the bank entry of image ``i`` and ``h(.)`` the InfoNCE above
  over ``K`` bank negatives, the loss is ``lam h(m_i, g) + (1 - lam) h(m_i, f)``; the bank is
  updated with the image branch only.  The official code's "patches" are whole-image views (a
  centre view and a random-crop view), not jigsaw tiles, and so are ours; its bank is filled
  with the untrained network's image features before training, as here.
* :func:`knn_accuracy`: weighted kNN classification of the valid split by the backbone's
  features of the train split (Wu et al.'s monitor).  It is the only place labels are read.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.losses import nt_xent
from raynas.data import ImageDataset


class NTXentLoss(nn.Module):
    """SimCLR's loss over the batch's two views (no state)."""

    #: augmented views per image the loss reads (``ContrastiveModel.loss`` gets that many)
    num_views = 2

    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, z: Sequence[torch.Tensor], index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return nt_xent(z[0], z[1], self.temperature)


class MemoryBankNCE(nn.Module):
    """Instance discrimination against an EMA memory bank (see the module docstring).

    Args:
        size: ``N``, the number of training images (indices ``0..N-1``).
        dim: width of the projections.
        temperature: ``tau`` (the paper's 0.07).
        negatives: ``K`` bank entries per view (the paper's 4096); all ``N - 1`` when ``K >= N - 1``.
        momentum: ``m`` of the bank update (the paper's 0.5).
    """

    num_views = 2

    def __init__(self, size: int, dim: int, temperature: float = 0.07, negatives: int = 4096, momentum: float = 0.5):
        super().__init__()
        if size < 2 or dim < 1 or negatives < 1:
            raise ValueError(f"bank size must be >= 2, dim and negatives >= 1; got {size}, {dim}, {negatives}")
        if not 0 <= momentum < 1:
            raise ValueError(f"bank momentum must be in [0, 1), got {momentum!r}")
        self.temperature, self.negatives, self.momentum = temperature, negatives, momentum
        bound = 1 / math.sqrt(dim / 3)  # the paper's initialisation: rows of norm about 1
        self.register_buffer("bank", torch.rand(size, dim) * 2 * bound - bound)

    def _negatives(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``len(images) x K`` bank indices other than each image's own."""
        size = len(self.bank)
        if self.negatives >= size - 1:
            others = torch.arange(size - 1, device=images.device).expand(len(images), -1)
        else:
            others = torch.randint(0, size - 1, (len(images), self.negatives), generator=generator, device=images.device)
        return others + (others >= images[:, None]).long()

    def check_index(self, index: torch.Tensor) -> None:
        size = len(self.bank)
        if index.min() < 0 or index.max() >= size:
            raise ValueError(f"image indices must be in [0, {size}) (the bank's size), got {index.min()}..{index.max()}")

    def info_nce(self, views: torch.Tensor, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Mean InfoNCE of unit ``views`` against their images' bank entries and ``K`` others."""
        positive = (views * self.bank[images]).sum(1, keepdim=True)
        negative = torch.einsum("bd,bkd->bk", views, self.bank[self._negatives(images, generator)])
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(views), dtype=torch.long, device=logits.device))

    @torch.no_grad()
    def update(self, index: torch.Tensor, values: torch.Tensor) -> None:
        """``V_i`` <- normalised ``m V_i + (1 - m) v`` for unit ``values``."""
        self.bank[index] = F.normalize(self.momentum * self.bank[index] + (1 - self.momentum) * values, dim=1)

    def forward(self, z: Sequence[torch.Tensor], index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.check_index(index)
        v1, v2 = F.normalize(z[0], dim=1), F.normalize(z[1], dim=1)
        loss = self.info_nce(torch.cat([v1, v2]), torch.cat([index, index]), generator)
        self.update(index, (v1 + v2).detach() / 2)
        return loss


class ImagePatchNCE(MemoryBankNCE):
    """CSNAS's image + patch NCE (see the module docstring).

    Args:
        patches: ``P``, augmented views in the patch branch (the official code's 2).
        weight: ``lam``, the patch branch's share of the loss (the official 0.5).
        Others as :class:`MemoryBankNCE` (the official ``K`` is ``2(B - 1)``, ``dim`` 256).
    """

    def __init__(
        self, size: int, dim: int, temperature: float = 0.07, negatives: int = 4096, momentum: float = 0.5,
        patches: int = 2, weight: float = 0.5,
    ):  # fmt: skip
        super().__init__(size, dim, temperature, negatives, momentum)
        if patches < 1 or not 0 <= weight <= 1:
            raise ValueError(f"patch views must be >= 1 and the branch weight in [0, 1]; got {patches}, {weight}")
        self.num_views = 1 + patches
        self.weight = weight
        self.merge = nn.Linear(patches * dim, dim)  # the patch branch's g: concatenated views -> one vector
        self.register_buffer("filled", torch.tensor(False))

    @torch.no_grad()
    def fill(self, index: torch.Tensor, image: torch.Tensor) -> None:
        """Set the bank entries of ``index`` to the image branch's projections (before training)."""
        self.check_index(index)
        self.bank[index] = F.normalize(image, dim=1)

    def forward(self, z: Sequence[torch.Tensor], index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.check_index(index)
        image = F.normalize(z[0], dim=1)
        patches = F.normalize(self.merge(torch.cat(list(z[1:]), dim=1)), dim=1)
        loss = self.weight * self.info_nce(patches, index, generator) + (1 - self.weight) * self.info_nce(image, index, generator)
        self.update(index, image.detach())
        return loss


def remove_classifier(network: nn.Module) -> int:
    """Replace ``network``'s classifier (its ``classifier`` attribute, else its last
    ``nn.Linear``, e.g. the end of a user's ``nn.Sequential``) by the identity; the width of
    the features it read."""
    classifier = getattr(network, "classifier", None)
    if isinstance(classifier, nn.Linear):
        network.classifier = nn.Identity()
        return classifier.in_features
    linears = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(
            f"{type(network).__name__} has no `classifier` nn.Linear (nor any nn.Linear) to replace by the projection head; "
            "contrastive training needs a network whose features a linear classifier reads"
        )
    parent_name, _, child = linears[-1].rpartition(".")
    parent = network.get_submodule(parent_name)
    width = getattr(parent, child).in_features
    setattr(parent, child, nn.Identity())
    return width


class ContrastiveModel(nn.Module):
    """``network`` without its classifier (:func:`remove_classifier`), a projection head, and
    the loss module."""

    def __init__(self, network: nn.Module, proj_dim: int, criterion: nn.Module):
        super().__init__()
        width = remove_classifier(network)
        self.backbone = network
        self.head = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, proj_dim))
        self.criterion = criterion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projections ``g(f(x))``, what the loss sees."""
        return self.head(self.backbone(x))

    def loss(self, views: Sequence[torch.Tensor], index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The contrastive loss of the augmented ``views`` of the images ``index`` (as many
        as ``criterion.num_views``); all go through the network as one batch, so BatchNorm
        sees them together."""
        return self.criterion(self(torch.cat(list(views))).chunk(len(views)), index, generator)


@torch.no_grad()
def features(backbone: nn.Module, data: ImageDataset, split: str, batch_size: int = 256) -> torch.Tensor:
    """Unit-norm backbone features of every image of ``split`` (eval mode, no augmentation)."""
    backbone.eval()
    return F.normalize(torch.cat([backbone(x) for x, _ in data.batches(split, batch_size)]), dim=1)


@torch.no_grad()
def knn_accuracy(backbone: nn.Module, data: ImageDataset, k: int = 20, temperature: float = 0.07) -> float:
    """Valid accuracy (percent) of a kNN vote over the train split's features: each of the
    ``k`` most similar train images votes for its label with weight ``exp(cos / temperature)``."""
    if k < 1:
        raise ValueError(f"knn_k must be >= 1, got {k!r}")
    train, valid = features(backbone, data, "train"), features(backbone, data, "valid")
    labels = data.y["train"]
    similarity, neighbour = (valid @ train.T).topk(min(k, len(train)), dim=1)
    votes = torch.zeros(len(valid), data.num_classes, device=valid.device)
    votes.scatter_add_(1, labels[neighbour], (similarity / temperature).exp())
    return 100.0 * float((votes.argmax(1) == data.y["valid"]).float().mean())
