"""Inference latency of a network on the device it is on: what ``latency_ms`` reports.

One measurement is the median of ``runs`` timed forward passes of a ``batch_size`` batch
after ``warmup`` untimed ones (no gradients, eval mode, the GPU synchronised around each
pass), so one slow pass (a page fault, a context switch) does not move it.  The spread it
reports is the interquartile range of the timed passes; how much the median itself moves
between measurements is in ``bench/latency_noise.py``.  ``backend="onnxruntime"`` times the
same network exported to ONNX on the CPU, as it would be served.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from torch import nn

BACKENDS = ("torch", "onnxruntime")


@dataclass(frozen=True)
class Latency:
    """Milliseconds per forward pass of one batch."""

    median_ms: float
    q25_ms: float
    q75_ms: float
    runs: int
    batch_size: int
    device: str
    backend: str


def measure_latency(
    model: nn.Module,
    in_shape: tuple[int, ...],
    batch_size: int = 1,
    warmup: int = 5,
    runs: int = 30,
    backend: str = "torch",
) -> Latency:
    """Latency of ``model`` on its own device for a ``batch_size`` x ``in_shape`` input.

    The model is put in eval mode for the measurement and back in the mode it was in."""
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if batch_size < 1 or runs < 1 or warmup < 0:
        raise ValueError(f"batch_size and runs must be >= 1 and warmup >= 0, got {batch_size}, {runs}, {warmup}")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    x = torch.randn(batch_size, *in_shape, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if backend == "onnxruntime":
                forward, device = _onnx_forward(model, x), torch.device("cpu")
            else:
                forward = lambda: model(x)  # noqa: E731
            times = _time(forward, device, warmup, runs)
    finally:
        model.train(was_training)
    q25, _, q75 = statistics.quantiles(times, n=4) if len(times) > 1 else (times[0],) * 3
    return Latency(statistics.median(times), q25, q75, runs, batch_size, str(device), backend)


def _time(forward: Callable[[], Any], device: Any, warmup: int, runs: int) -> list[float]:
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        forward()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        forward()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _onnx_forward(model: nn.Module, x: Any) -> Callable[[], Any]:
    """The model exported to ONNX and run by onnxruntime on the CPU (one thread, as a trial's)."""
    import copy

    from raynas.onnx_io import onnx_session, to_onnx

    with tempfile.TemporaryDirectory() as folder:
        path = to_onnx(copy.deepcopy(model).cpu(), x.cpu(), Path(folder) / "model.onnx")
        session = onnx_session(path)
    feed = {session.get_inputs()[0].name: x.cpu().numpy()}
    return lambda: session.run(None, feed)
