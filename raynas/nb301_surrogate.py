"""NAS-Bench-301 accuracy of any DARTS cell, from YAHPO Gym's ``nb301`` surrogate (ONNX).

NB301 has no table of every cell: its benchmark *is* a surrogate model.  YAHPO Gym ships one
as an ONNX file (``model_v2.onnx`` with ``encoding_v2.json``, Apache-2.0), which
``../shared/benchmarks/yahpo_nb301_v2`` holds; this module feeds it raynas's DARTS
architectures, so DARTS cells can be labelled by the thousand (a CG predictor's source data)
without training one.  The cell becomes YAHPO's config: per cell, 14 edges (node ``n`` of
2..5 has one edge from each earlier state, edges numbered in that order) of which each
node's two inputs carry an op, the others ``#na#``, and for nodes 3..5 the input pair
``"i_j"``; the continuous input is the epoch (1..98).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from raynas.arch import Arch
from raynas.onnx_io import onnx_session
from search_spaces import as_space
from search_spaces.base import check_choice

#: YAHPO's prefix of every DARTS hyper-parameter name
PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
CELLS = ("normal", "reduce")
#: the model's categorical inputs in its order: 14 edges per cell, then nodes 3..5's input pairs
INPUT_NAMES = [f"{PREFIX}edge_{c}_{e}" for c in CELLS for e in range(14)] + [
    f"{PREFIX}inputs_node_{c}_{n}" for c in CELLS for n in (3, 4, 5)
]
#: the model's outputs, in order
OUTPUTS = ("val_accuracy", "val_cross_entropy", "runtime", "runtime_increase")
#: node k's first edge (node k sums two of the k + 2 states before it)
FIRST_EDGE = (0, 2, 5, 9)
#: the last epoch the surrogate was fitted on (NB301 trains 100)
LAST_EPOCH = 98
MISSING = "#na#"


class NB301Surrogate:
    """``NB301Surrogate(folder).predict(archs)`` -> NB301 valid accuracy (%) of DARTS cells.

    Args:
        folder: a copy of YAHPO Gym's ``nb301`` data (``model_v2.onnx``, ``encoding_v2.json``).
        threads: onnxruntime threads.
    """

    def __init__(self, folder: str | Path, threads: int = 1):
        folder = Path(folder).expanduser()
        model, encoding = folder / "model_v2.onnx", folder / "encoding_v2.json"
        missing = [p.name for p in (model, encoding) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} is not YAHPO Gym's nb301 folder: it lacks {', '.join(missing)}")
        self.session = onnx_session(model, threads)
        self.encoding: dict[str, dict[str, int]] = json.loads(encoding.read_text())
        self.space = as_space("darts")

    def encode(self, arch: Arch | str) -> list[int]:
        """The model's categorical inputs for one DARTS cell pair (an Arch or a genotype string)."""
        arch = self.space.parse(arch) if isinstance(arch, str) else arch
        if arch.space != "darts":
            raise ValueError(f"the NB301 surrogate scores DARTS cells, not {arch.space} architectures")
        values: dict[str, str] = {}
        for cell_name, cell in zip(CELLS, arch.spec):
            for k in range(len(FIRST_EDGE)):
                (op_a, in_a), (op_b, in_b) = cell[2 * k], cell[2 * k + 1]
                values[f"{PREFIX}edge_{cell_name}_{FIRST_EDGE[k] + in_a}"] = op_a
                values[f"{PREFIX}edge_{cell_name}_{FIRST_EDGE[k] + in_b}"] = op_b
                if k:
                    values[f"{PREFIX}inputs_node_{cell_name}_{k + 2}"] = f"{min(in_a, in_b)}_{max(in_a, in_b)}"
        return [self.encoding[name][values.get(name, MISSING)] for name in INPUT_NAMES]

    def predict(self, archs: Iterable[Arch], epoch: int = LAST_EPOCH, output: str = "val_accuracy") -> np.ndarray:
        """The surrogate's ``output`` after ``epoch`` epochs; accuracy in % (the model's is a
        fraction), the other outputs in the model's units."""
        if not 1 <= epoch <= LAST_EPOCH:
            raise ValueError(f"epoch {epoch} is outside the surrogate's range 1..{LAST_EPOCH}")
        check_choice("output", output, OUTPUTS)
        x_cat = np.asarray([self.encode(a) for a in archs], dtype=np.int32).reshape(-1, len(INPUT_NAMES))
        if not len(x_cat):
            return np.zeros(0)
        x_cont = np.full((len(x_cat), 1), float(epoch), dtype=np.float32)
        (out,) = self.session.run(None, {"x_cat": x_cat, "x_cont": x_cont})
        values = out[:, OUTPUTS.index(output)].astype(np.float64)
        return 100.0 * values if output == "val_accuracy" else values
