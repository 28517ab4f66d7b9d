"""The in-memory image dataset every raynas trainer and probe reads, and its augmentation.

Images stay in their stored dtype (CIFAR as uint8: 150 MB instead of 600 MB) and are
normalised per batch; a dataset moved to a GPU (``to(device)``) is batched, normalised and
augmented there, so the training loop never copies between host and device.  Augmentation
(pad + random crop, horizontal flip) is vectorised over the batch in plain torch.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import torch

SPLITS = ("train", "valid", "test")


def normalise(x: torch.Tensor, scale: float, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(x * scale - mean) / std`` per channel, in float32, on ``x``'s device."""
    mean_t = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() * scale - mean_t) / std_t


@dataclass(frozen=True)
class ImageDataset:
    """Train / valid / test tensors of one image-classification dataset.

    ``x_*`` are ``N x C x H x W`` in their stored dtype; ``scale``, ``mean`` and ``std``
    map them to normalised floats: ``(x * scale - mean) / std`` per channel.
    """

    name: str
    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    num_classes: int
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int = 4
    flip: bool = True

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x["train"].shape[1:])  # type: ignore[return-value]

    def size(self, split: str) -> int:
        return len(self._y(split))

    def _y(self, split: str) -> torch.Tensor:
        if split not in self.y:
            raise ValueError(f"split must be one of {list(self.y)}, got {split!r}")
        return self.y[split]

    @property
    def device(self) -> torch.device:
        return self.y["train"].device

    def to(self, device: torch.device | str) -> "ImageDataset":
        """The dataset with every split on ``device`` (itself when it is there already)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return replace(self, x={k: v.to(device) for k, v in self.x.items()}, y={k: v.to(device) for k, v in self.y.items()})

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return normalise(x, self.scale, self.mean, self.std)

    def sample(self, batch_size: int, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded random subset of ``split`` (in dataset order): normalised images and labels.
        The same seed picks the same images for every consumer (Jacobians, zero-cost proxies)."""
        available = self.size(split)
        if not 1 <= batch_size <= available:
            raise ValueError(f"batch_size must be in [1, {available}] (the size of {self.name}/{split}), got {batch_size}")
        index = torch.randperm(available, generator=torch.Generator().manual_seed(int(seed)))[:batch_size].sort().values
        index = index.to(self.device)
        return self.normalise(self.x[split][index]), self.y[split][index]

    def batches(
        self,
        split: str,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        generator: torch.Generator | None = None,
        portion: float = 1.0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised ``(images, labels)`` batches of ``split`` (the first ``portion`` of it),
        on the dataset's device (``generator`` must be on it too)."""
        y = self._y(split)
        count = max(1, int(round(len(y) * portion)))
        order = torch.randperm(count, generator=generator, device=y.device) if shuffle else torch.arange(count, device=y.device)
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            images = self.normalise(self.x[split][index])
            if augment:
                images = augment_batch(images, self.pad, self.flip, generator)
            yield images, y[index]


def augment_batch(
    images: torch.Tensor, pad: int, flip: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop after zero padding by ``pad``, and random horizontal flips, per image."""
    n, _, h, w = images.shape
    device = images.device
    if pad > 0:
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]  # n,1,h,1
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]  # n,1,1,w
        batch = torch.arange(n, device=device)[:, None, None, None]
        channel = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[batch, channel, rows, cols]
    if flip:
        mirrored = torch.rand(n, generator=generator, device=device) < 0.5
        images = torch.where(mirrored[:, None, None, None], images.flip(3), images)
    return images




def cutout_pixels(cutout: float, in_shape: tuple[int, ...]) -> int:
    """The side in pixels of the square cut out of each ``in_shape`` image: ``cutout`` itself
    when it is >= 1, else that share of the image's shorter side, so one setting follows any
    image size (DARTS cuts 16 of CIFAR's 32 pixels: 0.5).  A square that blanks the whole image
    wherever its centre falls is refused: the network would train on nothing."""
    side = min(in_shape[-2:])
    pixels = int(cutout) if cutout >= 1 else round(cutout * side)
    if pixels // 2 >= side:
        raise ValueError(f"cutout={cutout:g} ({pixels} pixels) blanks every {in_shape[-2]}x{in_shape[-1]} training image; "
                         "give a share of the image's side instead (cutout=0.5: 16 of CIFAR's 32 pixels, as DARTS) "
                         f"or at most {2 * side - 1} pixels")  # fmt: skip
    return pixels


def cutout(images: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DeVries & Taylor's cutout, as DARTS trains with it: per image, a ``length`` x ``length``
    square (``2 * (length // 2)`` pixels) at a uniformly drawn centre, clipped at the border,
    set to 0: the normalised mean."""
    n, _, h, w = images.shape
    device = images.device
    cy = torch.randint(0, h, (n, 1, 1), generator=generator, device=device)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator, device=device)
    half = length // 2  # DARTS' box: [centre - half, centre + half) in each direction
    rows = torch.arange(h, device=device)[None, :, None]
    cols = torch.arange(w, device=device)[None, None, :]
    inside = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)
    return images.masked_fill(inside[:, None], 0.0)


def resized(data: ImageDataset, size: int) -> ImageDataset:
    """``data`` with every split resized to ``size x size`` (float32, same normalisation)."""

    def resize(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    pad = max(1, round(data.pad * size / data.in_shape[-1]))
    return replace(data, name=f"{data.name}@{size}", x={k: resize(v) for k, v in data.x.items()}, pad=pad)
