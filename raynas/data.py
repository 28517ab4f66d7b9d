"""Image datasets read from disk or from what a package ships; nothing is downloaded.

``load_dataset(spec)`` understands:

* ``digits``: scikit-learn's bundled 8x8 hand-written digits (1,797 images, 10 classes), our
  embedded real dataset, with a fixed stratified train / valid / test split;
* ``cifar10:/path/to/cifar-10-batches-py``: the standard python pickle batches (the last
  5,000 training images are the validation split, ``test_batch`` the test split);
* ``synthetic`` or ``synthetic:N``: N random images with class-dependent means (for tests).

Any spec takes a ``@S`` suffix (``digits@16``, ``cifar10:/path@16``): the images resized to
``S x S`` once at load (bilinear, antialiased), e.g. to trade resolution for speed when
many architectures are evaluated on the same batch.

Images stay in their stored dtype (CIFAR as uint8: 150 MB instead of 600 MB) and are
normalised per batch.  Augmentation (pad + random crop, horizontal flip) is vectorised
over the batch in plain torch.
"""
from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

SPLITS = ("train", "valid", "test")


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

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x.float() * self.scale - mean) / std

    def sample(self, batch_size: int, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded random subset of ``split`` (in dataset order): normalised images and labels.
        The same seed picks the same images for every consumer (Jacobians, zero-cost proxies)."""
        available = self.size(split)
        if not 1 <= batch_size <= available:
            raise ValueError(f"batch_size must be in [1, {available}] (the size of {self.name}/{split}), got {batch_size}")
        index = torch.randperm(available, generator=torch.Generator().manual_seed(int(seed)))[:batch_size].sort().values
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
        """Normalised ``(images, labels)`` batches of ``split`` (the first ``portion`` of it)."""
        y = self._y(split)
        count = max(1, int(round(len(y) * portion)))
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
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
    if pad > 0:
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # n,1,h,1
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # n,1,1,w
        batch = torch.arange(n)[:, None, None, None]
        channel = torch.arange(images.shape[1])[None, :, None, None]
        images = padded[batch, channel, rows, cols]
    if flip:
        mirrored = torch.rand(n, generator=generator) < 0.5
        images = torch.where(mirrored[:, None, None, None], images.flip(3), images)
    return images


def as_dataset(source: str | ImageDataset) -> ImageDataset:
    """``source`` itself, or the dataset the spec ``source`` names, loaded once per process
    (a reused Tune actor or a worker scoring many architectures reads it once)."""
    if isinstance(source, ImageDataset):
        return source
    if not isinstance(source, str):
        raise ValueError(
            f"a {type(source).__name__} is not a dataset raynas reads; give an ImageDataset "
            "(raynas.data.load_dataset(spec)) or a spec string such as 'digits' or 'cifar10:/path'"
        )
    return _cached(source)


@functools.lru_cache(maxsize=2)
def _cached(spec: str) -> ImageDataset:
    return load_dataset(spec)


def load_dataset(spec: str, seed: int = 0) -> ImageDataset:
    """Dataset named by ``spec`` (see the module docstring)."""
    name, arg, size = check_dataset(spec)
    data = _LOADERS[name](arg, seed)
    return data if size is None else _resized(data, size)


def check_dataset(spec: str) -> tuple[str, str, int | None]:
    """``(source, argument, size)`` of ``spec``, with the files it names checked, loading
    nothing: what the driver can tell before any trial starts."""
    if not isinstance(spec, str):
        raise ValueError(f"a dataset spec is a string such as 'digits', got {type(spec).__name__}")
    base, at, size = spec.rpartition("@")
    if at and (not size.isdigit() or int(size) < 1):
        raise ValueError(f"dataset spec {spec!r}: the part after '@' must be an image size in pixels, e.g. 'digits@16'")
    name, _, arg = (base if at else spec).partition(":")
    if name not in _LOADERS:
        raise ValueError(
            f"unknown dataset {spec!r}; allowed: 'digits', 'cifar10:/path/to/cifar-10-batches-py', 'synthetic[:N]', "
            "each optionally '@SIZE'"
        )
    _CHECKS.get(name, lambda _: None)(arg)
    return name, arg, int(size) if at else None


def _resized(data: ImageDataset, size: int) -> ImageDataset:
    """``data`` with every split resized to ``size x size`` (float32, same normalisation)."""

    def resize(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    pad = max(1, round(data.pad * size / data.in_shape[-1]))
    return replace(data, name=f"{data.name}@{size}", x={k: resize(v) for k, v in data.x.items()}, pad=pad)


def _split(labels: np.ndarray, fractions: tuple[float, float], seed: int) -> list[np.ndarray]:
    """Stratified train / valid / test indices with fixed fractions for valid and test."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_valid = int(round(len(members) * fractions[0]))
        n_test = int(round(len(members) * fractions[1]))
        parts[1].extend(members[:n_valid])
        parts[2].extend(members[n_valid : n_valid + n_test])
        parts[0].extend(members[n_valid + n_test :])
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def _from_arrays(name: str, x: np.ndarray, y: np.ndarray, seed: int, **kw: object) -> ImageDataset:
    index = _split(y, (0.2, 0.2), seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    return ImageDataset(
        name=name,
        x={s: xt[i] for s, i in zip(SPLITS, index)},
        y={s: yt[i] for s, i in zip(SPLITS, index)},
        num_classes=int(y.max()) + 1,
        **kw,  # type: ignore[arg-type]
    )


def _digits(arg: str, seed: int) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :]  # values 0..16
    # A flipped digit is another symbol, so no flips; 8x8 images take a 1-pixel shift.
    return _from_arrays("digits", x, bunch.target, seed, scale=1 / 16, mean=(0.3,), std=(0.4,), pad=1, flip=False)


def _synthetic(arg: str, seed: int) -> ImageDataset:
    n = int(arg) if arg else 256
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.normal(0.0, 1.0, size=(n, 3, 8, 8)).astype(np.float32) + y[:, None, None, None]
    return _from_arrays("synthetic", x, y, seed, scale=1.0, mean=(1.5,) * 3, std=(1.1,) * 3, pad=1, flip=True)


_CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _check_synthetic(arg: str) -> None:
    if arg and (not arg.isdigit() or int(arg) < 8):
        raise ValueError(f"synthetic:N takes a number of images N >= 8, got {arg!r}")


def _cifar10_folder(arg: str) -> Path:
    if not arg:
        raise ValueError("cifar10 needs a folder: 'cifar10:/path/to/cifar-10-batches-py'")
    folder = Path(arg).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {folder} does not exist; expected the python batches {_CIFAR_FILES}")
    missing = [f for f in _CIFAR_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {folder} lacks {missing}; expected the python batches {_CIFAR_FILES}")
    return folder


def _cifar10(arg: str, seed: int) -> ImageDataset:
    folder = _cifar10_folder(arg)
    xs, ys = zip(*(_cifar_batch(folder / f) for f in _CIFAR_FILES))
    x_train, y_train = np.concatenate(xs[:5]), np.concatenate(ys[:5])
    x, y = {"train": x_train[:-5000], "valid": x_train[-5000:], "test": xs[5]}, {
        "train": y_train[:-5000],
        "valid": y_train[-5000:],
        "test": ys[5],
    }
    return ImageDataset(
        name="cifar10",
        x={s: torch.from_numpy(v) for s, v in x.items()},
        y={s: torch.from_numpy(v.astype(np.int64)) for s, v in y.items()},
        num_classes=10,
        scale=1 / 255,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    )


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch (a pickled dict with b'data' N x 3072 uint8 and b'labels'): {err}"
        ) from err
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


#: dataset source -> loader(argument, seed); and the checks a spec's argument gets without loading
_LOADERS = {"digits": _digits, "cifar10": _cifar10, "synthetic": _synthetic}
_CHECKS = {"cifar10": _cifar10_folder, "synthetic": _check_synthetic}
