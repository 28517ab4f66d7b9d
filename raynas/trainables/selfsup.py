"""Label-free training of one architecture per trial: the contrastive loss is the objective.

Each ``step`` is one epoch over the first ``data_portion`` of the train split's *images*:
two augmented views per image (:mod:`raynas.views`), the backbone and projection head
(:class:`~raynas.trainables.contrastive.ContrastiveModel`), and SimCLR's NT-Xent loss
(``ssl_method="simclr"``) or memory-bank NCE (``ssl_method="nce"``, temperature 0.07, EMA
bank).  Every epoch reports ``ssl_loss`` (the epoch's mean loss; lower is better, so search
it with ``mode="min"``).  Training reads ``data.x`` only: labels never reach the loss, the
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

from typing import Any, Iterator

import torch
from torch import nn

from raynas.data import ImageDataset, normalise
from raynas.trainables.contrastive import ContrastiveModel, MemoryBankNCE, NTXentLoss, knn_accuracy
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
        yield index, data.x["train"][index].float() * data.scale


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
        if s.ssl_method == "nce":
            size = portion_size(self.data, s.data_portion)
            criterion: nn.Module = MemoryBankNCE(size, s.proj_dim, s.tau, s.nce_negatives, s.bank_momentum)
        else:
            criterion = NTXentLoss(s.tau)
        return ContrastiveModel(network, s.proj_dim, criterion)

    def cost_model(self) -> nn.Module:
        return self.model.backbone

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        s = self.settings
        return unlabelled_batches(self.data, s.batch_size, s.data_portion, self.generator)

    def batch_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
        index, pixels = batch
        views = self.settings.views(self.data.flip)
        view1 = standardise(random_view(pixels, views, self.generator), self.data)
        view2 = standardise(random_view(pixels, views, self.generator), self.data)
        return self.model.loss(view1, view2, index, self.generator), len(index)

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
