"""Datasets read from files the user gives, or shipped with a package; nothing is downloaded.

One loader per source, ``loader(argument, seed) -> ImageDataset``; each source's check, which
looks at the files without reading them, is in :mod:`raynas.data_specs`:

* ``digits``: scikit-learn's bundled 8x8 hand-written digits, split 60/20/20 (stratified);
* ``synthetic[:N]``: N random images with class-dependent means (tests);
* ``cifar10:/path/to/cifar-10-batches-py``: the python batches (the last 5,000 training
  images are the valid split, ``test_batch`` the test split);
* ``cifar100:/path/to/cifar-100-python`` (fine labels) and ``cifar100-coarse:/path`` (the 20
  superclasses): ``train`` / ``test``, the last 5,000 training images valid;
* ``imagefolder:/path``: ``train/<class>/*.png|jpg|...`` and, when present, ``val/`` (or
  ``valid/``) and ``test/`` with the same class folders, else a fixed stratified split of
  ``train/``; decoded once with Pillow and cached as uint8 arrays in ``.raynas-cache.npz``
  beside the folders, so a rerun does not decode again;
* ``npz:/path/file.npz``: ``x_train, y_train`` and optionally ``x_valid, y_valid, x_test,
  y_test`` (images ``N x H x W``, ``N x H x W x C`` or ``N x C x H x W``; uint8 in 0..255 or
  floats in 0..1); missing splits are split off ``train``.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from raynas.data_specs import (
    CIFAR10_FILES, CIFAR100_FILES, check_cifar10, check_cifar100, check_imagefolder, check_npz, class_files, split_folders,
)  # fmt: skip
from raynas.images import SPLITS, ImageDataset

#: the valid and test shares split off a dataset that has no such split of its own
HOLDOUT = (0.2, 0.2)
CACHE_FILE = ".raynas-cache.npz"


def split_indices(labels: np.ndarray, fractions: tuple[float, float], seed: int) -> list[np.ndarray]:
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


def from_arrays(name: str, x: np.ndarray, y: np.ndarray, seed: int, **kw: object) -> ImageDataset:
    """An ImageDataset of one array of images, split :data:`HOLDOUT` (stratified)."""
    index = split_indices(y, HOLDOUT, seed)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
    return ImageDataset(
        name=name,
        x={s: xt[i] for s, i in zip(SPLITS, index)},
        y={s: yt[i] for s, i in zip(SPLITS, index)},
        num_classes=int(y.max()) + 1,
        **kw,  # type: ignore[arg-type]
    )


def from_splits(name: str, x: dict[str, np.ndarray], y: dict[str, np.ndarray], num_classes: int, seed: int) -> ImageDataset:
    """An ImageDataset of uint8 (or 0..1 float) images per split; a missing valid or test
    split is split off train.  Normalised with the train split's per-channel mean and std."""
    for split in SPLITS:
        if split in y and (y[split].min(initial=0) < 0 or y[split].max(initial=0) >= num_classes):
            raise ValueError(f"{name}: {split} labels must be in 0..{num_classes - 1}, got {y[split].min()}..{y[split].max()}")
    missing = [s for s in ("valid", "test") if s not in x]
    if missing:
        fractions = (HOLDOUT[0] if "valid" in missing else 0.0, HOLDOUT[1] if "test" in missing else 0.0)
        rows = dict(zip(SPLITS, split_indices(y["train"], fractions, seed)))
        for split in [*missing, "train"]:  # train last: the others are cut from the whole of it
            x[split], y[split] = x["train"][rows[split]], y["train"][rows[split]]
    scale = 1 / 255 if x["train"].dtype == np.uint8 else 1.0
    pixels = x["train"].astype(np.float32) * scale
    mean = tuple(float(m) for m in pixels.mean(axis=(0, 2, 3)))
    std = tuple(max(float(s), 1e-3) for s in pixels.std(axis=(0, 2, 3)))
    return ImageDataset(
        name=name,
        x={s: torch.from_numpy(np.ascontiguousarray(x[s])) for s in SPLITS},
        y={s: torch.from_numpy(y[s].astype(np.int64)) for s in SPLITS},
        num_classes=num_classes, scale=scale, mean=mean, std=std,
    )  # fmt: skip


# ---------------------------------------------------------------------------- shipped
def digits(arg: str, seed: int) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :]  # values 0..16
    # A flipped digit is another symbol, so no flips; 8x8 images take a 1-pixel shift.
    return from_arrays("digits", x, bunch.target, seed, scale=1 / 16, mean=(0.3,), std=(0.4,), pad=1, flip=False)


def synthetic(arg: str, seed: int) -> ImageDataset:
    n = int(arg) if arg else 256
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.normal(0.0, 1.0, size=(n, 3, 8, 8)).astype(np.float32) + y[:, None, None, None]
    return from_arrays("synthetic", x, y, seed, scale=1.0, mean=(1.5,) * 3, std=(1.1,) * 3, pad=1, flip=True)


# ---------------------------------------------------------------------------- CIFAR
def _pickle_batch(path: Path, labels_key: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[labels_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
        raise ValueError(
            f"{path} is not a {what} python batch (a pickled dict with b'data' N x 3072 uint8 and {labels_key!r}): {err}"
        ) from err
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def _cifar(name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], classes: int,
           mean: tuple[float, ...], std: tuple[float, ...]) -> ImageDataset:  # fmt: skip
    (x_train, y_train), (x_test, y_test) = train, test
    x = {"train": x_train[:-5000], "valid": x_train[-5000:], "test": x_test}
    y = {"train": y_train[:-5000], "valid": y_train[-5000:], "test": y_test}
    return ImageDataset(
        name=name,
        x={s: torch.from_numpy(v) for s, v in x.items()},
        y={s: torch.from_numpy(v.astype(np.int64)) for s, v in y.items()},
        num_classes=classes, scale=1 / 255, mean=mean, std=std,
    )  # fmt: skip


def cifar10(arg: str, seed: int) -> ImageDataset:
    folder = check_cifar10(arg)
    xs, ys = zip(*(_pickle_batch(folder / f, b"labels", "CIFAR-10") for f in CIFAR10_FILES))
    train = (np.concatenate(xs[:5]), np.concatenate(ys[:5]))
    return _cifar("cifar10", train, (xs[5], ys[5]), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def _cifar100(arg: str, coarse: bool) -> ImageDataset:
    folder = check_cifar100(arg)
    key = b"coarse_labels" if coarse else b"fine_labels"
    train, test = (_pickle_batch(folder / f, key, "CIFAR-100") for f in CIFAR100_FILES)
    name = "cifar100-coarse" if coarse else "cifar100"
    return _cifar(name, train, test, 20 if coarse else 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


def cifar100(arg: str, seed: int) -> ImageDataset:
    return _cifar100(arg, coarse=False)


def cifar100_coarse(arg: str, seed: int) -> ImageDataset:
    return _cifar100(arg, coarse=True)


# ---------------------------------------------------------------------------- image folders
def _decode(path: Path, size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if image.mode not in ("L", "I;16", "I", "F") else "L")
            if size is not None:
                image = image.resize((size, size), Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _files_key(folders: dict[str, Path], size: int | None) -> str:
    listing = [(str(p.relative_to(f.parent)), p.stat().st_size, p.stat().st_mtime_ns)
               for f in folders.values() for files in class_files(f).values() for p in files]  # fmt: skip
    return hashlib.sha1(repr((listing, size)).encode()).hexdigest()


def imagefolder(arg: str, seed: int, size: int | None = None) -> ImageDataset:
    """Every image of the folder, decoded once (and cached, keyed by the files and the size)."""
    root = check_imagefolder(arg)
    folders = split_folders(root)
    classes = list(class_files(folders["train"]))
    key = _files_key(folders, size)
    cache = root / CACHE_FILE
    if cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                x = {s: stored[f"x_{s}"] for s in folders}
                y = {s: stored[f"y_{s}"] for s in folders}
                return from_splits(f"imagefolder:{root.name}", x, y, len(classes), seed)
    x, y, shapes = {}, {}, set()
    for split, folder in folders.items():
        found = class_files(folder)
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise ValueError(f"{folder} has classes {unknown} that {folders['train']} does not have")
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in found.get(name, []):
                images.append(_decode(path, size))
                labels.append(label)
                shapes.add(images[-1].shape)
        if len(shapes) > 1:
            raise ValueError(
                f"images of {root} differ in size {sorted(shapes)[:4]}; give a size to resize them to, e.g. "
                f"'imagefolder:{root}@32'"
            )
        x[split], y[split] = np.stack(images), np.asarray(labels, dtype=np.int64)
    try:
        np.savez(cache, key=np.array(key), **{f"x_{s}": v for s, v in x.items()}, **{f"y_{s}": v for s, v in y.items()})
    except OSError:
        pass  # a read-only folder: decode again next time
    return from_splits(f"imagefolder:{root.name}", x, y, len(classes), seed)


# ---------------------------------------------------------------------------- npz
def _channels_first(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{path}: {key} must be N x H x W, N x H x W x C or N x C x H x W images, has shape {x.shape}")
    return x.transpose(0, 3, 1, 2) if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4) else x


def npz(arg: str, seed: int) -> ImageDataset:
    path = check_npz(arg)
    try:
        stored = dict(np.load(path))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err
    if "x_train" not in stored or "y_train" not in stored:
        raise ValueError(f"{path} must hold x_train and y_train (and optionally x_valid, y_valid, x_test, y_test); has {sorted(stored)}")
    x, y = {}, {}
    for split in SPLITS:
        if f"x_{split}" in stored:
            x[split] = _channels_first(stored[f"x_{split}"], path, f"x_{split}")
            y[split] = np.asarray(stored[f"y_{split}"]).reshape(-1)
            if len(x[split]) != len(y[split]):
                raise ValueError(f"{path}: x_{split} holds {len(x[split])} images but y_{split} {len(y[split])} labels")
    num_classes = int(max(v.max() for v in y.values())) + 1
    return from_splits(f"npz:{path.stem}", x, y, num_classes, seed)


#: source -> loader(argument, seed) (its check without reading: :data:`raynas.data_specs.CHECKS`); the sizing ones take ``size``
LOADERS: dict[str, Callable[..., ImageDataset]] = {
    "digits": digits, "synthetic": synthetic, "cifar10": cifar10, "cifar100": cifar100,
    "cifar100-coarse": cifar100_coarse, "imagefolder": imagefolder, "npz": npz,
}  # fmt: skip
#: sources that decode images at a given size themselves (the others are resized after loading)
DECODE_AT_SIZE = ("imagefolder",)
