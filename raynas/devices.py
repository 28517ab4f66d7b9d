"""Where a network runs and in what precision.

Inside a Ray trial or task the GPUs Ray assigned are the visible ones (Ray sets
``CUDA_VISIBLE_DEVICES``), so "the trial's GPU" is ``cuda:0`` of the process.  One pure
function decides the device from what was asked and what is there; it is tested with given
GPU lists, and every place that runs a network asks it.  torch is imported by the functions
that use it: the names and their checks serve the driver's checks, which run before torch loads.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("32", "bf16", "fp16")


def check_device_name(requested: str) -> str:
    """``requested`` if it names a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``), else a ValueError."""
    kind, _, index = str(requested).partition(":")
    if kind not in DEVICES or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda' or 'cuda:N', got {requested!r}")
    return requested


def resolve_device(requested: str = "auto", gpu_ids: Sequence[Any] = (), cuda_count: int | None = None) -> torch.device:
    """The device to run on.

    Args:
        requested: ``"auto"`` (a GPU when one was assigned, else the CPU), ``"cpu"``,
            ``"cuda"`` or ``"cuda:N"``.
        gpu_ids: the GPUs Ray assigned to this worker (``ray.get_gpu_ids()``).
        cuda_count: visible CUDA devices (default: ``torch.cuda.device_count()``).
    """
    import torch

    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    kind, _, index = check_device_name(requested).partition(":")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "auto":
        return torch.device("cuda:0") if len(gpu_ids) and count else torch.device("cpu")
    number = int(index or 0)
    if number >= count:
        raise ValueError(f"device {requested!r} asked for, but this process sees {count} CUDA device(s)")
    return torch.device(f"cuda:{number}")


def trial_device(requested: str = "auto") -> torch.device:
    """:func:`resolve_device` for the current process (inside Ray: the GPUs Ray assigned it)."""
    import ray

    gpu_ids = ray.get_gpu_ids() if ray.is_initialized() else ()
    return resolve_device(requested, gpu_ids)


def check_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision 'fp16' needs a CUDA device; on the CPU use 'bf16' or '32'")
    return precision


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Mixed-precision autocast on ``device`` (nothing for ``"32"``)."""
    if precision == "32":
        yield
        return
    import torch

    with torch.autocast(device_type=device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision]):
        yield


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler: active for fp16 (whose small gradients underflow), a no-op otherwise."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
