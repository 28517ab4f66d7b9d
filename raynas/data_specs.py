"""What a dataset spec names and whether its files are there, without reading them: the
driver's check before any trial starts (and before torch loads).  The loaders are in
:mod:`raynas.data_sources`; ``raynas.data.load_dataset`` joins the two.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

#: every dataset source a spec can name (``source[:argument][@size]``)
SOURCES = ("digits", "synthetic", "cifar10", "cifar100", "cifar100-coarse", "imagefolder", "npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR100_FILES = ["train", "test"]


def check_synthetic(arg: str) -> None:
    if arg and (not arg.isdigit() or int(arg) < 8):
        raise ValueError(f"synthetic:N takes a number of images N >= 8, got {arg!r}")


def _existing(arg: str, needs: str, what: str, is_file: bool = False, expected: str = "") -> Path:
    """The path a spec names, or a clear error: ``needs`` when there is none, ``"{what} {path}
    does not exist"`` (then ``expected``) when it is not there."""
    if not arg:
        raise ValueError(needs)
    path = Path(arg).expanduser()
    if not (path.is_file() if is_file else path.is_dir()):
        raise FileNotFoundError(f"{what} {path} does not exist{expected}")
    return path


def _folder(arg: str, source: str, label: str, example: str, files: list[str]) -> Path:
    expected = f"; expected the python batches {files}"
    folder = _existing(arg, f"{source} needs a folder: '{source}:{example}'", f"{label} folder", expected=expected)
    missing = [f for f in files if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"{label} folder {folder} lacks {missing}{expected}")
    return folder


def check_cifar10(arg: str) -> Path:
    return _folder(arg, "cifar10", "CIFAR-10", "/path/to/cifar-10-batches-py", CIFAR10_FILES)


def check_cifar100(arg: str) -> Path:
    return _folder(arg, "cifar100", "CIFAR-100", "/path/to/cifar-100-python", CIFAR100_FILES)


def split_folders(root: Path) -> dict[str, Path]:
    folders = {"train": root / "train"}
    for split, names in (("valid", ("val", "valid")), ("test", ("test",))):
        found = [root / n for n in names if (root / n).is_dir()]
        if found:
            folders[split] = found[0]
    return folders


def class_files(folder: Path) -> dict[str, list[Path]]:
    return {c.name: sorted(p for p in c.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for c in sorted(folder.iterdir()) if c.is_dir()}  # fmt: skip


def check_imagefolder(arg: str) -> Path:
    root = _existing(arg, "imagefolder needs a folder: 'imagefolder:/path' holding train/<class>/*.png", "image folder")
    if not (root / "train").is_dir():
        raise FileNotFoundError(f"image folder {root} has no train/ folder; expected train/<class>/*.png (and val/, test/)")
    classes = class_files(root / "train")
    if not classes:
        raise ValueError(f"image folder {root / 'train'} has no class folders; expected train/<class>/*.png")
    empty = [c for c, files in classes.items() if not files]
    if empty:
        raise ValueError(f"class folders {empty} of {root / 'train'} hold no images ({', '.join(IMAGE_SUFFIXES)})")
    return root


def check_npz(arg: str) -> Path:
    return _existing(arg, "npz needs a file: 'npz:/path/data.npz' with x_train and y_train", "npz file", is_file=True)


CHECKS: dict[str, Callable[[str], object]] = {
    "synthetic": check_synthetic, "cifar10": check_cifar10, "cifar100": check_cifar100,
    "cifar100-coarse": check_cifar100, "imagefolder": check_imagefolder, "npz": check_npz,
}  # fmt: skip


def check_dataset(spec: str) -> tuple[str, str, int | None]:
    """``(source, argument, size)`` of ``spec``, with the files it names checked, loading
    nothing: what the driver can tell before any trial starts."""
    if not isinstance(spec, str):
        raise ValueError(f"a dataset spec is a string such as 'digits', got {type(spec).__name__}")
    base, at, size = spec.rpartition("@")
    if at and (not size.isdigit() or int(size) < 1):
        raise ValueError(f"dataset spec {spec!r}: the part after '@' must be an image size in pixels, e.g. 'digits@16'")
    name, _, arg = (base if at else spec).partition(":")
    if name not in SOURCES:
        raise ValueError(
            f"unknown dataset {spec!r}; allowed: 'digits', 'synthetic[:N]', 'cifar10:/path/to/cifar-10-batches-py', "
            "'cifar100:/path/to/cifar-100-python', 'cifar100-coarse:/path', 'imagefolder:/path', 'npz:/path.npz', "
            "each optionally '@SIZE'"
        )
    CHECKS.get(name, lambda _: None)(arg)
    return name, arg, int(size) if at else None
