"""Label-free training of one architecture per trial: the contrastive loss is the objective.

Each ``step`` is one epoch over the first ``data_portion`` of the train split's *images*:
two augmented views per image (:mod:`raynas.views`), the backbone and projection head
(:class:`~raynas.trainables.contrastive.ContrastiveModel`), and SimCLR's NT-Xent loss
(``ssl_method="simclr"``), memory-bank NCE (``ssl_method="nce"``, temperature 0.07, EMA
bank) or CSNAS's image + patch NCE (``ssl_method="pirl"``: an image branch, flips only, and a
patch branch of ``patch_views`` augmented views, both against one bank of image features).
Every epoch reports ``ssl_loss`` (the epoch's mean loss; lower is better, so search it with
``mode="min"``).  Training reads ``data.x`` only: labels never reach the loss, the
augmentations or the RNG.  With ``knn_probe=True`` the epoch also reports ``knn_acc``, a kNN
classification of the valid split on the backbone's features, the one use of labels, for
checking the objective and never for training.

The published setting (CSNAS, Nguyen & Chang 2021, which this follows) is 10 epochs on a
small unlabelled subset: the defaults are 10 epochs on half the train images.  Optimiser,
schedule, checkpoints (the bank included: it lives in the model's ``state_dict``) and
``reset_config`` are the stand-alone trainable's, so a restored trial continues exactly
where it stopped.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch import nn

from raynas.data import ImageDataset, augment_batch, normalise
from raynas.trainables.contrastive import ContrastiveModel, ImagePatchNCE, MemoryBankNCE, NTXentLoss, knn_accuracy
from raynas.trainables.settings import SelfSupSettings
from raynas.trainables.standalone import ArchTraining, StandaloneTrainable
from raynas.trainables.views import random_view

def check_in_memory(data: object) -> None:
    """Contrastive training indexes the train images (memory bank, views of a batch by index):
    a streamed torch or Ray Data dataset is refused by name."""
    if not isinstance(data, ImageDataset):
        raise ValueError(f"--trainable selfsup needs its images in memory (an ImageDataset: a spec such as 'digits' or "
                         f"'imagefolder:/path', or raynas.data.load_dataset); a streamed {type(data).__name__} is read "
                         "by the standalone and supernet trainables")  # fmt: skip


def portion_size(data: ImageDataset, portion: float) -> int:
    """How many train images the first ``portion`` of the split holds (as ``data.batches`` counts)."""
    return max(1, int(round(data.size("train") * portion)))


def unlabelled_batches(
    data: ImageDataset, batch_size: int, portion: float, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled ``(indices, pixels)`` batches of the first ``portion`` of the train images
    (pixels scaled to [0, 1] for the usual datasets).  A last batch smaller than the others
    is dropped (SimCLR's ``drop_last``) unless it is the only one."""
    count = portion_size(data, portion)
    order = torch.randperm(count, generator=generator, device=data.device)
    starts = range(0, count - batch_size + 1, batch_size) if count >= batch_size else [0]
    for start in starts:
        index = order[start : start + batch_size]
        yield index, train_pixels(data, index)


def train_pixels(data: ImageDataset, index: torch.Tensor) -> torch.Tensor:
    """The train images ``index``, pixels scaled to [0, 1] for the usual datasets."""
    return data.x["train"][index].float() * data.scale


def standardise(pixels: torch.Tensor, data: ImageDataset) -> torch.Tensor:
    """``(pixels - mean) / std`` per channel: a view in the network's input scale."""
    return normalise(pixels, 1.0, data.mean, data.std)


class ContrastiveTraining(ArchTraining):
    """Contrastive training of one architecture: the hooks of :class:`ArchTraining` for two
    augmented views per image and a contrastive loss instead of labels."""

    settings_type = SelfSupSettings
    settings: SelfSupSettings

    def build_model(self) -> nn.Module:
        s = self.settings
        check_in_memory(self.data)
        network = self.space.build(self.arch, num_classes=1, in_shape=self.data.in_shape, **s.build)
        size = portion_size(self.data, s.data_portion)
        if s.ssl_method == "pirl":
            criterion: nn.Module = ImagePatchNCE(
                size, s.proj_dim, s.tau, s.nce_negatives, s.bank_momentum, s.patch_views, s.patch_weight
            )
        elif s.ssl_method == "nce":
            criterion = MemoryBankNCE(size, s.proj_dim, s.tau, s.nce_negatives, s.bank_momentum)
        else:
            criterion = NTXentLoss(s.tau)
        return ContrastiveModel(network, s.proj_dim, criterion)

    def cost_model(self) -> nn.Module:
        return self.model.backbone

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        s = self.settings
        criterion = self.model.criterion
        if isinstance(criterion, ImagePatchNCE) and not criterion.filled:
            self.fill_bank(criterion)
        return unlabelled_batches(self.data, s.batch_size, s.data_portion, self.generator)

    @torch.no_grad()
    def fill_bank(self, criterion: ImagePatchNCE) -> None:
        """The bank starts as the untrained network's image projections (the official code's
        ``Memory.initialize``; train-mode BatchNorm, as there).  Once: a restored trial has it."""
        self.model.train()
        count = portion_size(self.data, self.settings.data_portion)
        # near-equal chunks of at most 256: never a batch of one, which train-mode BatchNorm refuses
        for index in torch.arange(count, device=self.data.device).tensor_split(math.ceil(count / 256)):
            criterion.fill(index, self.model(standardise(train_pixels(self.data, index), self.data)))
        criterion.filled.fill_(True)

    def batch_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
        index, pixels = batch
        views = self.settings.views(self.data.flip)
        criterion = self.model.criterion
        if isinstance(criterion, ImagePatchNCE):
            # the image branch, as CSNAS's: flips only (where the dataset allows them), no crop, no colour
            first = augment_batch(pixels, 0, self.data.flip, self.generator)
        else:
            first = random_view(pixels, views, self.generator)
        rest = [random_view(pixels, views, self.generator) for _ in range(criterion.num_views - 1)]
        batch_views = [standardise(view, self.data) for view in [first, *rest]]
        return self.model.loss(batch_views, index, self.generator), len(index)

    def epoch_metrics(self, loss: float) -> dict[str, Any]:
        result: dict[str, Any] = {"ssl_loss": loss}
        if self.settings.knn_probe:
            result["knn_acc"] = knn_accuracy(self.model.backbone, self.data, self.settings.knn_k)
        return result

    def final_metrics(self) -> dict[str, Any]:
        return {}  # no test accuracy: that would need labels


class SelfSupervisedTrainable(StandaloneTrainable):
    """Contrastive training of ``space.decode(config)`` (:class:`ContrastiveTraining`);
    reports ``ssl_loss`` every epoch.

    Reported: ``ssl_loss``, ``epoch``, ``params`` and ``flops`` (the backbone: the network
    without its classifier), ``arch``, ``epoch_time_s``, and ``knn_acc`` with ``knn_probe``.
    """

    training_type = ContrastiveTraining
    check_data = staticmethod(check_in_memory)
