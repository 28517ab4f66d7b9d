"""Datasets too large to hold, read batch by batch: a ``torch.utils.data.Dataset`` through a
``DataLoader``, or a Ray Data ``Dataset`` through ``iter_torch_batches`` (how existing Ray
pipelines hand data to Tune).  Both offer what the trainables read of an in-memory
:class:`~raynas.data.ImageDataset`: ``in_shape``, ``num_classes``, ``size(split)``,
``batches(...)`` of normalised images on the trial's device, ``sample(...)``, ``to(device)``.

One dataset (not a dict of splits) is split 60/20/20 into train / valid / test by a fixed
random permutation of its items.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from raynas.images import SPLITS, augment_batch, normalise

#: items read to estimate the per-channel mean and standard deviation
STATS_ITEMS = 512


class _OnDevice:
    """What both streamed datasets share with ImageDataset's interface: the device batches go
    to, and normalisation with the statistics of the first items."""

    device: torch.device
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to(self, device: torch.device) -> Any:
        self.device = torch.device(device)
        return self

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return normalise(x, self.scale, self.mean, self.std)


def _as_image(item: Any, where: str) -> tuple[torch.Tensor, int]:
    """``(image C x H x W, label)`` of one ``(image, label)`` item, with a clear error otherwise."""
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ValueError(f"{where}: items must be (image, label) pairs, got {type(item).__name__}")
    image, label = item
    image = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if image.dim() == 2:
        image = image[None]
    if image.dim() != 3:
        raise ValueError(f"{where}: an image must be C x H x W (or H x W), got shape {tuple(image.shape)}")
    return image, int(label)


def _splits(source: Any, seed: int) -> dict[str, Any]:
    """``{split: torch Dataset}``: one dataset (or a dict with train only) cut 60/20/20; a dict
    with train and one of valid / test uses that one for both."""
    from torch.utils.data import Subset

    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(SPLITS))
        if unknown or "train" not in source:
            raise ValueError(f"a dict of datasets needs a 'train' key and may have 'valid' and 'test'; got {sorted(source)}")
        if len(source) > 1:
            return {"train": source["train"], "valid": source.get("valid", source.get("test")),
                    "test": source.get("test", source.get("valid"))}  # fmt: skip
        source = source["train"]
    order = np.random.default_rng(seed).permutation(len(source))
    cut = [int(len(order) * 0.6), int(len(order) * 0.8)]
    return {s: Subset(source, order[a:b].tolist()) for s, (a, b) in zip(SPLITS, zip([0, *cut], [*cut, len(order)]))}


@dataclass
class TorchImageDataset(_OnDevice):
    """A ``torch.utils.data.Dataset`` of ``(image, label)`` items (or a dict of them per split).

    Args:
        source: the dataset, or ``{"train": ..., "valid": ..., "test": ...}``.
        num_classes: how many classes (default: the dataset's ``classes`` attribute, else the
            largest label among the first :data:`STATS_ITEMS` items + 1).
        name: shown in results.
        num_workers: DataLoader worker processes.
        seed: the split of a single dataset.
    """

    source: Any
    num_classes: int | None = None
    name: str = "torch-dataset"
    num_workers: int = 0
    seed: int = 0
    pad: int = 4
    flip: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        from torch.utils.data import Dataset

        parts = self.source.values() if isinstance(self.source, Mapping) else [self.source]
        if not all(isinstance(p, Dataset) and hasattr(p, "__len__") for p in parts):
            raise ValueError("a TorchImageDataset needs map-style torch Datasets (with __len__ and __getitem__)")
        self.splits = _splits(self.source, self.seed)
        first = [_as_image(self.splits["train"][i], f"{self.name} item {i}") for i in range(min(STATS_ITEMS, self.size("train")))]
        shapes = {tuple(img.shape) for img, _ in first}
        if len(shapes) > 1:
            raise ValueError(f"{self.name}: images differ in shape {sorted(shapes)[:4]}; resize them in the dataset")
        images = torch.stack([img for img, _ in first]).float()
        self.scale = 1 / 255 if first[0][0].dtype == torch.uint8 else 1.0
        self.mean = tuple(float(v) for v in (images * self.scale).mean(dim=(0, 2, 3)))
        self.std = tuple(max(float(v), 1e-3) for v in (images * self.scale).std(dim=(0, 2, 3)))
        self.in_shape = tuple(images.shape[1:])
        if self.num_classes is None:
            classes = getattr(self.splits["train"], "classes", None) or getattr(self.source, "classes", None)
            self.num_classes = len(classes) if classes else max(label for _, label in first) + 1

    def size(self, split: str) -> int:
        return len(self._split(split))

    def _split(self, split: str) -> Any:
        if split not in self.splits:
            raise ValueError(f"split must be one of {list(self.splits)}, got {split!r}")
        return self.splits[split]

    def _collate(self, items: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [_as_image(item, self.name) for item in items]
        labels = torch.tensor([p[1] for p in pairs])
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):  # on the CPU, before the copy
            raise ValueError(f"{self.name}: labels must be in 0..{self.num_classes - 1} (num_classes={self.num_classes}), "
                             f"got {int(labels.min())}..{int(labels.max())}")  # fmt: skip
        return torch.stack([p[0] for p in pairs]), labels

    def batches(
        self, split: str, batch_size: int, shuffle: bool = False, augment: bool = False,
        generator: torch.Generator | None = None, portion: float = 1.0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Normalised ``(images, labels)`` batches on :attr:`device`, streamed by a DataLoader."""
        from torch.utils.data import DataLoader, Subset

        data = self._split(split)
        count = max(1, int(round(len(data) * portion)))
        device = generator.device if generator is not None else "cpu"
        order = torch.randperm(count, generator=generator, device=device).cpu() if shuffle else torch.arange(count)
        loader = DataLoader(
            Subset(data, order.tolist()), batch_size=batch_size, num_workers=self.num_workers,
            collate_fn=self._collate, pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        for x, y in loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            images = self.normalise(x)
            yield (augment_batch(images, self.pad, self.flip, generator) if augment else images), y

    def sample(self, batch_size: int, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        data = self._split(split)
        if not 1 <= batch_size <= len(data):
            raise ValueError(f"batch_size must be in [1, {len(data)}] (the size of {self.name}/{split}), got {batch_size}")
        index = torch.randperm(len(data), generator=torch.Generator().manual_seed(int(seed)))[:batch_size].sort().values
        x, y = self._collate([data[int(i)] for i in index])
        return self.normalise(x.to(self.device)), y.to(self.device)


@dataclass
class RayImageDataset(_OnDevice):
    """A Ray Data ``Dataset`` with an image column and a label column (or a dict of them per
    split), read in the trial with ``iter_torch_batches``.

    Args:
        source: e.g. ``ray.data.from_numpy(...)`` or ``ray.data.read_images(...)`` with labels
            added, or ``{"train": ..., "valid": ..., "test": ...}``.
        image_column, label_column: the columns holding images (``H x W``, ``H x W x C`` or
            ``C x H x W``) and integer labels.
        num_classes: how many classes (default: the largest label + 1, one pass over labels).
        name: shown in results.
        seed: the split of a single dataset.
    """

    source: Any
    image_column: str = "image"
    label_column: str = "label"
    num_classes: int | None = None
    name: str = "ray-dataset"
    seed: int = 0
    pad: int = 4
    flip: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        import ray.data

        parts = dict(self.source) if isinstance(self.source, Mapping) else {"train": self.source}
        if "train" not in parts or set(parts) - set(SPLITS):
            raise ValueError(f"a dict of datasets needs a 'train' key and may have 'valid' and 'test'; got {sorted(parts)}")
        if not all(isinstance(p, ray.data.Dataset) for p in parts.values()):
            raise ValueError("a RayImageDataset needs ray.data.Dataset objects")
        columns = parts["train"].columns()
        missing = [c for c in (self.image_column, self.label_column) if c not in columns]
        if missing:
            raise ValueError(f"{self.name}: Ray dataset has no column {missing}; its columns are {columns}")
        if len(parts) > 1:
            self.splits = {"train": parts["train"], "valid": parts.get("valid", parts.get("test")),
                           "test": parts.get("test", parts.get("valid"))}  # fmt: skip
        else:
            train, rest = parts["train"].train_test_split(0.4, shuffle=True, seed=self.seed)
            valid, test = rest.train_test_split(0.5, shuffle=False)
            self.splits = {"train": train, "valid": valid, "test": test}
        self._sizes = {split: part.count() for split, part in self.splits.items()}
        first = next(iter(self.splits["train"].iter_batches(batch_size=STATS_ITEMS, batch_format="numpy")))
        images = self._images(torch.as_tensor(np.array(first[self.image_column])))
        self.scale = 1 / 255 if images.dtype == torch.uint8 else 1.0
        pixels = images.float() * self.scale
        self.mean = tuple(float(v) for v in pixels.mean(dim=(0, 2, 3)))
        self.std = tuple(max(float(v), 1e-3) for v in pixels.std(dim=(0, 2, 3)))
        self.in_shape = tuple(images.shape[1:])
        if self.num_classes is None:  # one pass over the labels of every part (each Ray Data pass has a start-up cost)
            first, *rest = parts.values()
            self.num_classes = int((first.union(*rest) if rest else first).max(self.label_column)) + 1

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return x[:, None]
        if x.dim() != 4:
            raise ValueError(f"{self.name}: images must be H x W, H x W x C or C x H x W, got batches of shape {tuple(x.shape)}")
        return x.permute(0, 3, 1, 2) if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4) else x

    def size(self, split: str) -> int:
        if split not in self._sizes:
            raise ValueError(f"split must be one of {list(self._sizes)}, got {split!r}")
        return self._sizes[split]

    def batches(
        self, split: str, batch_size: int, shuffle: bool = False, augment: bool = False,
        generator: torch.Generator | None = None, portion: float = 1.0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Normalised ``(images, labels)`` batches on :attr:`device` (``iter_torch_batches``)."""
        data = self.splits[split]
        if portion < 1:
            data = data.limit(max(1, int(round(self.size(split) * portion))))
        if shuffle:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else None
            data = data.random_shuffle(seed=seed)
        columns = [self.image_column, self.label_column]
        for batch in data.select_columns(columns).iter_torch_batches(batch_size=batch_size, device=str(self.device)):
            images = self.normalise(self._images(batch[self.image_column]))
            labels = batch[self.label_column].long()
            yield (augment_batch(images, self.pad, self.flip, generator) if augment else images), labels

    def sample(self, batch_size: int, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        batch = next(iter(self.splits[split].random_shuffle(seed=seed).iter_torch_batches(batch_size=batch_size)))
        return self.normalise(self._images(batch[self.image_column]).to(self.device)), batch[self.label_column].long().to(self.device)
