"""How much a trial's ``latency_ms`` moves between measurements of the same network.

    python bench/latency_noise.py [--repeats 20] [--runs 20]

For NB201 networks of three sizes (3 x 32 x 32 input, batch 1, one thread as in a trial), the
latency is measured ``--repeats`` times; printed: the median of the medians, their relative
interquartile range and min-max spread, and the within-measurement IQR.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from raynas.latency import measure_latency
from search_spaces import get_space

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
SIZES = {"C=8 N=1": {"C": 8, "N": 1}, "C=16 N=2": {"C": 16, "N": 2}, "C=16 N=5 (full)": {"C": 16, "N": 5}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20, help="timed passes per measurement (a trial's latency_runs)")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    print(f"{'network':16s} {'median ms':>9s} {'IQR of medians':>15s} {'min-max':>9s} {'IQR within':>11s}")
    for label, build in SIZES.items():
        model = space.build(space.parse(ARCH), num_classes=10, in_shape=(3, 32, 32), **build)
        results = [measure_latency(model, (3, 32, 32), runs=args.runs, backend=args.backend) for _ in range(args.repeats)]
        medians = [r.median_ms for r in results]
        mid = statistics.median(medians)
        q25, _, q75 = statistics.quantiles(medians, n=4)
        within = statistics.median((r.q75_ms - r.q25_ms) / r.median_ms for r in results)
        print(f"{label:16s} {mid:9.2f} {100 * (q75 - q25) / mid:14.1f}% {100 * (max(medians) - min(medians)) / mid:8.1f}% "
              f"{100 * within:10.1f}%")


if __name__ == "__main__":
    main()
