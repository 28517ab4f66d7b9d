"""Datasets from disk or from scikit-learn, augmentation, and clear errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from raynas.data import augment_batch, load_dataset


def test_digits_has_fixed_disjoint_stratified_splits():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.in_shape == (1, 8, 8) and a.num_classes == 10
    assert sum(a.size(s) for s in ("train", "valid", "test")) == 1797
    assert torch.equal(a.y["valid"], b.y["valid"])
    assert set(a.y["valid"].tolist()) == set(range(10))
    flat = {s: {tuple(x.flatten().tolist()) for x in a.x[s]} for s in ("valid", "test")}
    assert len(flat["valid"]) > 300 and a.size("train") > 1000


def test_batches_are_normalised_and_cover_the_split_once():
    data = load_dataset("digits")
    seen = 0
    for x, y in data.batches("valid", 100):
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
        seen += len(y)
    assert seen == data.size("valid")
    x = torch.cat([x for x, _ in data.batches("train", 512)])
    assert abs(float(x.mean())) < 0.3 and 0.6 < float(x.std()) < 1.4
    portion = sum(len(y) for _, y in data.batches("train", 64, portion=0.25))
    assert portion == round(data.size("train") * 0.25)


def test_augmentation_shifts_and_flips_each_image_independently():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    same = augment_batch(images, pad=0, flip=False)
    assert torch.equal(same, images)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(images.repeat(50, 1, 1, 1), pad=1, flip=True, generator=gen)
    assert out.shape == (100, 1, 4, 4)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 4  # different crops / flips
    flipped = augment_batch(images, pad=0, flip=True, generator=torch.Generator().manual_seed(3))
    for o, i in zip(flipped, images):
        assert torch.equal(o, i) or torch.equal(o, i.flip(2))


def _write_cifar(folder, n=20, broken=None):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n if name == "test_batch" else 1200, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n if name == "test_batch" else 1200))}
        with open(folder / name, "wb") as handle:
            if name == broken:
                handle.write(b"not a pickle")
            else:
                pickle.dump(batch, handle)


def test_cifar10_python_batches_are_read_without_torchvision(tmp_path):
    _write_cifar(tmp_path / "c10")
    data = load_dataset(f"cifar10:{tmp_path / 'c10'}")
    assert data.in_shape == (3, 32, 32) and data.x["train"].dtype == torch.uint8
    assert data.size("train") == 6000 - 5000 and data.size("valid") == 5000 and data.size("test") == 20
    x, _ = next(data.batches("train", 8, shuffle=True, augment=True))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32


def test_missing_or_corrupt_cifar_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*data_batch_1"):
        load_dataset(f"cifar10:{tmp_path / 'nowhere'}")
    _write_cifar(tmp_path / "c10", broken="data_batch_3")
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 python batch"):
        load_dataset(f"cifar10:{tmp_path / 'c10'}")
    (tmp_path / "c10" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['test_batch'\]"):
        load_dataset(f"cifar10:{tmp_path / 'c10'}")


def test_unknown_dataset_lists_what_is_allowed():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="cifar10 needs a folder"):
        load_dataset("cifar10")


def test_size_suffix_resizes_every_split_once():
    small, big = load_dataset("digits"), load_dataset("digits@16")
    assert big.in_shape == (1, 16, 16) and big.name == "digits@16"
    assert all(big.size(s) == small.size(s) for s in ("train", "valid", "test"))
    # bilinear resizing keeps the mean intensity of each image (up to edge effects)
    assert torch.allclose(big.x["train"].float().mean((1, 2, 3)), small.x["train"].float().mean((1, 2, 3)), atol=0.3)
    with pytest.raises(ValueError, match="after '@' must be an image size"):
        load_dataset("digits@big")
