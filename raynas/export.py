"""A search's (or a retraining's) best networks as self-contained artifacts: ``raynas export``.

Each artifact is a folder: the network (``model.pt`` TorchScript, ``model.onnx``, or
``state_dict.pt`` weights) and ``model.json`` — architecture, space, build options, input
shape, normalisation, the metrics the trial earned and where it came from.  TorchScript and
ONNX load without raynas (``torch.jit.load``, ``onnxruntime.InferenceSession``); every format
loads with :func:`load_model`.  An export checks itself: the exported network's outputs on a
random batch must equal the PyTorch network's within ``atol`` times the largest output
magnitude (absolute for outputs below 1: float32 rounding grows with the logits), else
:class:`ExportMismatch`.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from raynas.data import load_dataset
from raynas.experiment import local_folder
from raynas.onnx_io import onnx_session, to_onnx
from raynas.report import trial_checkpoint
from raynas.retrain import best_trials
from search_spaces import as_space

FORMATS = ("torchscript", "onnx", "state_dict")
FILES = {"torchscript": "model.pt", "onnx": "model.onnx", "state_dict": "state_dict.pt"}
META_FILE = "model.json"
#: largest output difference an export may show, relative to the largest output above 1 (bench/export_models.py)
ATOL = 1e-4
_METRICS = ("val_acc", "test_acc", "params", "flops", "latency_ms", "epoch", "ssl_loss", "knn_acc")


class ExportMismatch(ValueError):
    """The exported network does not compute what the PyTorch network computes."""


def export_models(experiment: str | Path, out: str | Path, fmt: str = "torchscript", top_k: int = 1,
                  space: Any = None, atol: float = ATOL) -> list[Path]:  # fmt: skip
    """The ``top_k`` best networks of ``experiment`` (its metric; a multi-objective one's
    Pareto set), each exported to ``out/<rank>-<trial_id>/`` and verified; their folders."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    folder = local_folder(experiment)
    saved, rows = best_trials(folder, top_k, space)
    space = as_space(space or saved.space)
    data = load_dataset(saved.dataset or "digits")
    build = dict(saved.trainer_options.get("build", {}))
    written = []
    for rank, row in enumerate(rows, 1):
        checkpoint = trial_checkpoint(folder, row.get("trial_id"))
        if checkpoint is None:
            raise FileNotFoundError(f"trial {row.get('trial_id')} of {folder} has no checkpoint to export")
        weights_file = checkpoint / "best.pt" if (checkpoint / "best.pt").is_file() else checkpoint / "state.pt"
        trial = f"trial {row.get('trial_id')} of {folder} ({saved.trainable!r} trainable)"
        retrain = f"retrain its architecture with `raynas train --from {folder}` and export that retraining"
        if not weights_file.is_file():  # e.g. a sampled trial: several networks of one NAGO generator
            held = sorted(f.name for f in checkpoint.iterdir())
            raise ValueError(f"{trial} holds no single network's weights (its checkpoint has {held}); {retrain}")
        state = torch.load(weights_file, map_location="cpu", weights_only=False)
        arch = space.parse(row["arch"])
        model = space.build(arch, num_classes=data.num_classes, in_shape=data.in_shape, **build)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:  # e.g. a label-free trial: a backbone and a projection head, no classifier
            raise ValueError(f"{trial} holds the weights of another model than the classifier raynas builds for "
                             f"its architecture; {retrain}") from err  # fmt: skip
        meta = {
            "format": fmt, "space": space.name, "arch": str(arch), "build": build, "num_classes": data.num_classes,
            "in_shape": list(data.in_shape), "normalise": {"scale": data.scale, "mean": list(data.mean), "std": list(data.std)},
            "input": "float32 images N x C x H x W, normalised as (x * scale - mean) / std per channel",
            "metrics": {k: row[k] for k in _METRICS if isinstance(row.get(k), (int, float)) and math.isfinite(row[k])},
            "weights": "best val_acc epoch" if weights_file.name == "best.pt" else "last epoch",
            "source": {"experiment": str(Path(folder).resolve()), "trial_id": row.get("trial_id"),
                       "checkpoint": str(weights_file.resolve())},
        }  # fmt: skip
        target = Path(out).expanduser() / f"{rank}-{row.get('trial_id')}"
        written.append(export_model(model, meta, target, fmt, atol))
    return written


def export_model(model: nn.Module, meta: dict[str, Any], out: str | Path, fmt: str, atol: float = ATOL) -> Path:
    """One network and its metadata (``meta``: at least ``in_shape``; for ``state_dict`` also
    ``space``, ``arch``, ``num_classes``, ``build``, which rebuild it) written to ``out`` as
    ``fmt``, then loaded back and compared with ``model`` on a random batch of 4."""
    missing = {"in_shape", *(("space", "arch", "num_classes") if fmt == "state_dict" else ())} - set(meta)
    if missing:
        raise ValueError(f"exporting {fmt} needs meta keys {sorted(missing)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    example = torch.randn(4, *meta["in_shape"], generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    path = out / FILES[fmt]
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(model, example), str(path))
        elif fmt == "onnx":
            to_onnx(model, example, path)
        else:
            torch.save(model.state_dict(), path)
        seconds = time.perf_counter() - start
        meta = {**meta, "format": fmt, "tolerance": atol, "export_s": round(seconds, 3)}
        (out / META_FILE).write_text(json.dumps(meta, indent=1))
        expected = model(example)
        loaded, _ = load_model(out)
        diff = float((torch.as_tensor(loaded(example)) - expected).abs().max())
        allowed = atol * max(1.0, float(expected.abs().max()))
    if not diff <= allowed:
        raise ExportMismatch(f"the {fmt} export in {out} differs from the PyTorch network by up to {diff:.3g} "
                             f"(allowed {allowed:.3g}: {atol:g} of the largest output) on a random batch")  # fmt: skip
    (out / META_FILE).write_text(json.dumps({**meta, "max_abs_diff": diff, "max_abs_output": float(expected.abs().max())}, indent=1))
    return out


def load_model(folder: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """An exported network, ready to call on a normalised batch, and its ``model.json``: a
    TorchScript module, a PyTorch module rebuilt from its space (state_dict), or for ONNX a
    function running onnxruntime that takes and returns torch tensors."""
    folder = Path(folder).expanduser()
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not an exported model (no {META_FILE})")
    meta = json.loads(meta_path.read_text())
    path = folder / FILES[meta["format"]]
    if meta["format"] == "torchscript":
        return torch.jit.load(str(path)).eval(), meta
    if meta["format"] == "onnx":
        session = onnx_session(path)
        name = session.get_inputs()[0].name
        return (lambda x: torch.from_numpy(session.run(None, {name: x.detach().cpu().numpy()})[0])), meta
    space = as_space(meta["space"])
    model = space.build(space.parse(meta["arch"]), num_classes=meta["num_classes"], in_shape=tuple(meta["in_shape"]),
                        **meta.get("build", {}))  # fmt: skip
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval(), meta
