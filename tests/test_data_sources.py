"""The user's own data: image folders, npz files, CIFAR-100 pickles, torch Datasets and Ray
Data datasets, each made here in small files; every bad input named."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO

from raynas.data import as_dataset, check_dataset, load_dataset
from raynas.trainables import ArchTraining
from search_spaces import get_space

SPACE = get_space("nb201")
TINY = {**SPACE.encode(SPACE.from_index(6111)), "epochs": 1, "batch_size": 16, "build": {"C": 4, "N": 1}}


def png_folder(root, classes=("cat", "dog", "owl"), per_class=12, size=(10, 10), splits=("train",)):
    rng = np.random.default_rng(0)
    for split in splits:
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(60 * c + 40, 20, size=(*size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def test_an_image_folder_is_split_decoded_once_and_cached(tmp_path, monkeypatch):
    import raynas.data_sources as sources

    decoded = []
    real = sources._decode
    monkeypatch.setattr(sources, "_decode", lambda path, size: decoded.append(path) or real(path, size))
    root = png_folder(tmp_path / "images")
    data = load_dataset(f"imagefolder:{root}")
    assert data.num_classes == 3 and data.in_shape == (3, 10, 10) and data.x["train"].dtype == torch.uint8
    assert sum(data.size(s) for s in ("train", "valid", "test")) == 36 and data.size("valid") > 0
    assert len(decoded) == 36 and (root / ".raynas-cache.npz").is_file()
    again = load_dataset(f"imagefolder:{root}")
    assert len(decoded) == 36 and torch.equal(again.x["train"], data.x["train"])  # read from the cache
    (root / "train" / "cat" / "0.png").unlink()
    assert sum(load_dataset(f"imagefolder:{root}").size(s) for s in ("train", "valid", "test")) == 35  # a changed folder is read again
    assert load_dataset(f"imagefolder:{root}@6").in_shape == (3, 6, 6)


def test_an_image_folder_with_its_own_splits_uses_them(tmp_path):
    root = png_folder(tmp_path / "images", splits=("train", "val", "test"), per_class=4)
    data = load_dataset(f"imagefolder:{root}")
    assert (data.size("train"), data.size("valid"), data.size("test")) == (12, 12, 12)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: (root / "other").mkdir(parents=True), "has no train/ folder"),
        (lambda root: (root / "train").mkdir(parents=True), "has no class folders"),
        (lambda root: (root / "train" / "cat").mkdir(parents=True), r"class folders \['cat'\] .* hold no images"),
    ],
)
def test_bad_image_folders_are_named(tmp_path, make, message):
    root = tmp_path / "images"
    make(root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        check_dataset(f"imagefolder:{root}")


def test_an_unreadable_image_and_mixed_sizes_are_named(tmp_path):
    root = png_folder(tmp_path / "images", per_class=2)
    (root / "train" / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        load_dataset(f"imagefolder:{root}")
    (root / "train" / "dog" / "broken.png").unlink()
    Image.fromarray(np.zeros((7, 9, 3), dtype=np.uint8)).save(root / "train" / "dog" / "odd.png")
    with pytest.raises(ValueError, match=r"differ in size .*@32"):
        load_dataset(f"imagefolder:{root}")
    assert load_dataset(f"imagefolder:{root}@8").in_shape == (3, 8, 8)


def test_an_npz_file_in_any_layout(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, size=(40, 12, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=nhwc, y_train=np.arange(40) % 4,
             x_test=nhwc[:8].transpose(0, 3, 1, 2), y_test=np.arange(8) % 4)  # fmt: skip
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert data.in_shape == (3, 12, 12) and data.num_classes == 4 and data.size("test") == 8 and data.size("valid") > 0
    np.savez(tmp_path / "bad.npz", x_train=nhwc, y_train=np.arange(39))
    with pytest.raises(ValueError, match="40 images but y_train 39 labels"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    np.savez(tmp_path / "nolabels.npz", images=nhwc)
    with pytest.raises(ValueError, match="must hold x_train and y_train"):
        load_dataset(f"npz:{tmp_path / 'nolabels.npz'}")
    np.savez(tmp_path / "range.npz", x_train=nhwc, y_train=np.arange(40) % 4, x_test=nhwc[:2], y_test=np.array([0, -1]))
    with pytest.raises(ValueError, match="test labels must be in 0..3"):
        load_dataset(f"npz:{tmp_path / 'range.npz'}")


def test_cifar100_pickles_with_fine_or_coarse_labels(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 5010), ("test", 20)):
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"fine_labels": list(np.arange(n) % 100),
                 b"coarse_labels": list(np.arange(n) % 20)}  # fmt: skip
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    fine, coarse = load_dataset(f"cifar100:{tmp_path}"), load_dataset(f"cifar100-coarse:{tmp_path}")
    assert (fine.num_classes, coarse.num_classes) == (100, 20) and fine.size("valid") == 5000 and fine.size("train") == 10
    with pytest.raises(FileNotFoundError, match=r"CIFAR-100 folder .* lacks \['test'\]"):
        (tmp_path / "test").unlink()
        check_dataset(f"cifar100:{tmp_path}")


def test_a_torch_dataset_is_streamed_and_trained_on():
    from torch.utils.data import TensorDataset

    images = torch.randint(0, 256, (60, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(60) % 3
    data = as_dataset({"train": TensorDataset(images[:40], labels[:40]), "valid": TensorDataset(images[40:], labels[40:])})
    assert data.num_classes == 3 and data.in_shape == (3, 8, 8) and data.size("test") == 20
    x, y = next(data.batches("train", 16, shuffle=True, augment=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (16, 3, 8, 8) and x.dtype == torch.float32 and y.shape == (16,)
    result = ArchTraining(TINY, data).step()
    assert 0 <= result["val_acc"] <= 100 and result["device"] == "cpu"


def test_a_dataset_item_that_is_not_an_image_and_a_label_is_named():
    class Bad(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(3, 8, 8)

    with pytest.raises(ValueError, match=r"items must be \(image, label\) pairs"):
        as_dataset(Bad())


def test_labels_out_of_range_are_named():
    from torch.utils.data import TensorDataset

    data = as_dataset(TensorDataset(torch.zeros(20, 1, 8, 8), torch.arange(20) % 4))
    data.num_classes = 3  # the user said three classes; the data has four
    with pytest.raises(ValueError, match=r"labels must be in 0..2 \(num_classes=3\), got 0..3"):
        list(data.batches("train", 12))
    with pytest.raises(ValueError, match=r"train labels must be in 0..1, got -1..1"):
        from raynas.data_sources import from_splits

        from_splits("mine", {"train": np.zeros((4, 8, 8), np.uint8)}, {"train": np.array([0, 1, -1, 1])}, 2, seed=0)


def test_the_readme_data_example_trains_in_a_real_tuner(ray_session, tmp_path):
    """The README's torch and Ray Data datasets; the Ray one trained by a Tuner (one trial on
    two CPUs: Ray Data's read tasks need a CPU besides the trial's)."""
    from ray import tune

    from searchers import make_searcher

    text = (REPO / "README.md").read_text()
    example = next(b.split("```")[0] for b in text.split("```python\n")[1:] if "TensorDataset(images, labels)" in b)
    names: dict = {}
    exec(compile(example, "README data example", "exec"), names)
    assert names["streamed"] is not None
    tuner = tune.Tuner(
        names["piped"],
        param_space={"space": "nb201", "epochs": 1, "batch_size": 16, "build": {"C": 4, "N": 1}},
        tune_config=tune.TuneConfig(search_alg=make_searcher("random", "nb201", seed=0), metric="val_acc", mode="max",
                                    num_samples=1),  # fmt: skip
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="ray-data", verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 1
    assert 0 <= results[0].metrics["val_acc"] <= 100 and results[0].metrics["device"] == "cpu"


def test_selfsup_refuses_a_streamed_dataset_in_the_driver():
    from torch.utils.data import TensorDataset

    from raynas.trainables import with_data

    with pytest.raises(ValueError, match="selfsup needs its images in memory .* a streamed TorchImageDataset"):
        with_data("selfsup", TensorDataset(torch.zeros(20, 1, 8, 8), torch.arange(20) % 4))
