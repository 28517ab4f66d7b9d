"""Export time and output match of one network per built-in space, in each format.

    python bench/export_models.py [--seeds 3]

Networks at their search-time sizes with random weights (an export does not depend on what the
weights are); input 3 x 32 x 32, 10 classes.  Prints seconds per export and the largest
|exported - PyTorch| over a batch of 4 (the self-check each export runs).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

from raynas.export import FORMATS, export_model
from search_spaces import get_space

BUILDS = {"nb201": {"C": 16, "N": 5}, "darts": {"C": 16, "layers": 8}, "nago": {}, "mobilenetv3": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="architectures per space")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'space':12s} {'format':12s} {'export s (median)':>18s} {'max |diff|':>11s} {'max |logit|':>11s}")
    for name, build in BUILDS.items():
        space = get_space(name)
        for fmt in FORMATS:
            seconds, diffs, outputs = [], [], []
            for seed in range(args.seeds):
                arch = space.sample(seed)
                model = space.build(arch, num_classes=10, in_shape=(3, 32, 32), **build)
                meta = {"in_shape": [3, 32, 32], "space": name, "arch": str(arch), "num_classes": 10, "build": build}
                with tempfile.TemporaryDirectory() as out:
                    folder = export_model(model, meta, out, fmt)
                    meta = __import__("json").loads((folder / "model.json").read_text())
                seconds.append(meta["export_s"])
                diffs.append(meta["max_abs_diff"])
                outputs.append(meta["max_abs_output"])
            print(f"{name:12s} {fmt:12s} {statistics.median(seconds):18.2f} {max(diffs):11.1e} {max(outputs):11.3g}")


if __name__ == "__main__":
    main()
