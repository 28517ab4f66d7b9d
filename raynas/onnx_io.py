"""ONNX export and inference with clear errors: the optional ``export`` extra (onnx,
onnxruntime) named when it is missing, and an operator without an ONNX mapping named when
the exporter meets one (torch's own message buries it in a traceback)."""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: the ONNX opset written (onnxruntime 1.x runs it; the CNN ops raynas builds all map at it)
OPSET = 17
_INSTALL = "pip install -e '.[export]' (or: pip install onnx onnxruntime)"


class UnsupportedOperator(ValueError):
    """The network uses an operator that has no ONNX mapping."""


def require_onnx() -> None:
    """A clear ImportError when the optional ONNX packages are missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise ImportError(f"ONNX export needs onnx and onnxruntime ({err.name} is missing): {_INSTALL}") from None


def to_onnx(model: nn.Module, example: Any, path: str | Path) -> Path:
    """``model`` (eval mode) written to ``path`` as ONNX with a dynamic batch dimension.

    TorchScript-based exporter (``dynamo=False``): 1.5-6.5 s for the built-in spaces' networks
    here, against 9-35 s for the ``torch.export`` one, with outputs equal to 1e-7 either way."""
    import torch

    require_onnx()
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=OPSET, input_names=["images"],
                output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            )  # fmt: skip
    except Exception as err:  # noqa: BLE001  (re-raised with the operator named, when there is one)
        op = re.search(r"operator '?([\w:.]+)'?", str(err))
        if op or "UnsupportedOperator" in type(err).__name__:
            name = op.group(1) if op else str(err).splitlines()[0]
            raise UnsupportedOperator(
                f"cannot export {type(model).__name__} to ONNX: the operator {name} has no ONNX mapping at opset "
                f"{OPSET}; export it as torchscript or state_dict instead"
            ) from err
        raise
    return path


def onnx_session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session of ``path``."""
    require_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
