"""Datasets by name, by file, or as the user's own objects; nothing is downloaded.

``load_dataset(spec)`` reads the sources of :mod:`raynas.data_sources`: ``digits`` (the
embedded default), ``synthetic[:N]``, ``cifar10:/path``, ``cifar100:/path``,
``cifar100-coarse:/path``, ``imagefolder:/path``, ``npz:/path.npz``.  Any spec takes a ``@S``
suffix (``digits@16``, ``imagefolder:/path@32``): the images resized to ``S x S`` once at load
(an image folder decodes at that size).  ``check_dataset(spec)`` checks a spec and its files
without loading, which the driver does before any trial starts.

``as_dataset(source)`` is what every consumer calls on what it was given: a spec (loaded once
per process), an :class:`ImageDataset`, a ``torch.utils.data.Dataset`` of ``(image, label)``
items or a Ray Data ``Dataset`` with image and label columns (each, or a dict of them per
split: streamed, never loaded whole, :mod:`raynas.streaming`).
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

from raynas.data_sources import DECODE_AT_SIZE, LOADERS
from raynas.data_specs import check_dataset
from raynas.images import SPLITS, ImageDataset, augment_batch, normalise, resized

__all__ = ["SPLITS", "ImageDataset", "as_dataset", "augment_batch", "check_dataset", "load_dataset", "normalise"]


def load_dataset(spec: str, seed: int = 0) -> ImageDataset:
    """Dataset named by ``spec`` (see the module docstring)."""
    name, arg, size = check_dataset(spec)
    if name in DECODE_AT_SIZE:
        return LOADERS[name](arg, seed, size=size)
    data = LOADERS[name](arg, seed)
    return data if size is None else resized(data, size)


def as_dataset(source: Any) -> Any:
    """What a trainer reads from ``source`` (see the module docstring); a spec is loaded once
    per process (a reused Tune actor or a worker scoring many architectures reads it once)."""
    from raynas.streaming import RayImageDataset, TorchImageDataset

    if isinstance(source, (ImageDataset, TorchImageDataset, RayImageDataset)):
        return source
    if isinstance(source, str):
        return _cached(source)
    kind = _kind(source)
    if kind == "torch":
        return TorchImageDataset(source)
    if kind == "ray":
        return RayImageDataset(source)
    raise ValueError(
        f"a {type(source).__name__} is not a dataset raynas reads; give a spec string ('digits', 'cifar10:/path', "
        "'imagefolder:/path', 'npz:/path.npz', ...), an ImageDataset (raynas.data.load_dataset), a "
        "torch.utils.data.Dataset of (image, label) items, a Ray Data Dataset with image and label columns, "
        "or a dict of datasets per split"
    )


def _kind(source: Any) -> str | None:
    """``"torch"`` / ``"ray"`` for a torch or Ray Data dataset (or a dict of them per split)."""
    from torch.utils.data import Dataset

    parts = list(source.values()) if isinstance(source, Mapping) else [source]
    if parts and all(isinstance(p, Dataset) for p in parts):
        return "torch"
    try:
        import ray.data
    except ImportError:  # pragma: no cover - ray is a dependency
        return None
    if parts and all(isinstance(p, ray.data.Dataset) for p in parts):
        return "ray"
    return None


@functools.lru_cache(maxsize=2)
def _cached(spec: str) -> ImageDataset:
    return load_dataset(spec)
