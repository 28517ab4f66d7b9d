"""Training throughput of ``StandaloneTrainable``'s epoch against the physical limit: a bare
PyTorch loop (forward, cross entropy, backward, SGD step) on the same network and the same
data in memory, on this machine's device.

NB201 C=16 N=5 on 32x32 inputs, batch 256 (``--arch``, ``--batch-size``, ``--images``); both
loops train ``--images`` images after a warm-up batch.  Rows: fp32, bf16 autocast and
channels_last where the device supports them.  Then the time to the first batch of each data
source: digits, a CIFAR-shaped npz, an image folder of generated PNGs, a torch Dataset and a
Ray Data dataset.

    python bench/train_throughput.py --images 4096
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from raynas.data import ImageDataset, load_dataset
from raynas.devices import autocast, resolve_device
from raynas.parallel import ray_session
from raynas.trainables.standalone import ArchTraining
from search_spaces import get_space


def synthetic_cifar(n: int) -> ImageDataset:
    """``n`` CIFAR-shaped uint8 images in every split (the content does not change the cost)."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, size=n)).long()
    return ImageDataset("cifar-shaped", {s: x for s in ("train", "valid", "test")}, {s: y for s in ("train", "valid", "test")},
                        10, 1 / 255, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))  # fmt: skip


def bare_loop(model: nn.Module, data: ImageDataset, batch_size: int, device: torch.device, precision: str,
              channels_last: bool) -> float:  # fmt: skip
    """Images per second of the plainest training loop over the same batches."""
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    batches = list(data.to(device).batches("train", batch_size, shuffle=True, generator=torch.Generator(device).manual_seed(0)))
    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = nn.functional.cross_entropy(model(x.contiguous(memory_format=memory)), y)
        loss.backward()
        optimizer.step()

    step(*batches[0])  # warm-up
    _sync(device)
    start = time.perf_counter()
    for x, y in batches:
        step(x, y)
    _sync(device)
    return sum(len(y) for _, y in batches) / (time.perf_counter() - start)


def trainable_epoch(arch: str, data: ImageDataset, batch_size: int, device: str, precision: str, channels_last: bool) -> float:
    """Images per second of one :class:`ArchTraining` epoch (augmentation off, as in the bare loop)."""
    space = get_space("nb201")
    config = {**space.encode(space.parse(arch)), "epochs": 2, "batch_size": batch_size, "augment": False,
              "grad_clip": 0.0, "device": device, "precision": precision, "channels_last": channels_last,
              "build": {"C": 16, "N": 5}}  # fmt: skip
    training = ArchTraining(config, data)
    first = next(iter(training.train_batches()))
    training.batch_loss(first)[0].backward()  # warm-up
    _sync(training.device)
    start = time.perf_counter()
    training.train_one_epoch()
    _sync(training.device)
    return data.size("train") / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_batch_times(folder: Path) -> list[tuple[str, float]]:
    """Seconds from nothing to the first training batch of each data source."""
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2000, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=2000)
    np.savez(folder / "data.npz", x_train=images, y_train=labels)
    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / "png" / "train" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / "png" / "train" / str(label) / f"{i}.png")
    with ray_session():  # started before the clock: the Ray Data row times the data, not Ray's start
        return _time_sources(folder, images, labels)


def _time_sources(folder: Path, images: np.ndarray, labels: np.ndarray) -> list[tuple[str, float]]:
    rows = []
    for name, make in (
        ("digits", lambda: load_dataset("digits")),
        ("npz (2,000 CIFAR-shaped)", lambda: load_dataset(f"npz:{folder / 'data.npz'}")),
        ("image folder (2,000 PNGs), first read", lambda: load_dataset(f"imagefolder:{folder / 'png'}")),
        ("image folder, cached", lambda: load_dataset(f"imagefolder:{folder / 'png'}")),
        ("torch Dataset (TensorDataset, streamed)", lambda: _torch_dataset(images, labels)),
        ("Ray Data dataset (from_items, Ray already running)", lambda: _ray_dataset(images, labels)),
    ):
        start = time.perf_counter()
        next(iter(make().batches("train", 256, shuffle=True, generator=torch.Generator().manual_seed(0))))
        rows.append((name, time.perf_counter() - start))
    return rows


def _torch_dataset(images: np.ndarray, labels: np.ndarray):
    from torch.utils.data import TensorDataset

    from raynas.data import as_dataset

    return as_dataset(TensorDataset(torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)))


def _ray_dataset(images: np.ndarray, labels: np.ndarray):
    import ray

    from raynas.data import as_dataset

    return as_dataset(ray.data.from_items([{"image": image, "label": int(label)} for image, label in zip(images, labels)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    parser.add_argument("--images", type=int, default=2048, help="training images per measured epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--settings", default="32,bf16,32:cl", help="precisions to measure, ':cl' for channels_last "
                        "(default: 32,bf16,32:cl, plus fp16 on a GPU; '' for none)")  # fmt: skip
    parser.add_argument("--skip-sources", action="store_true", help="only the training throughput")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device, [0] if torch.cuda.is_available() else [])
    data = synthetic_cifar(args.images)
    space = get_space("nb201")
    settings = [(item.split(":")[0], item.endswith(":cl")) for item in args.settings.split(",") if item]
    settings += [("fp16", False)] if device.type == "cuda" and "fp16" not in args.settings else []
    print(f"NB201 C=16 N=5, {args.images} images 3x32x32 per epoch, batch {args.batch_size}, {device}, {args.threads} threads")
    if settings:
        print("| precision | channels_last | bare loop img/s | StandaloneTrainable img/s | ratio |")
        print("| --- | --- | --- | --- | --- |")
    for precision, channels_last in settings:
        torch.manual_seed(0)
        model = space.build(space.parse(args.arch), 10, (3, 32, 32), C=16, N=5)
        bare = bare_loop(model, data, args.batch_size, device, precision, channels_last)
        ours = trainable_epoch(args.arch, data, args.batch_size, str(device), precision, channels_last)
        print(f"| {precision} | {channels_last} | {bare:.0f} | {ours:.0f} | {ours / bare:.2f} |")
    if not args.skip_sources:
        with tempfile.TemporaryDirectory() as folder:
            rows = first_batch_times(Path(folder))
        print("\n| data source | time to the first batch (s) |\n| --- | --- |")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
