"""How far to trust ``raynas predict`` on models of another family: SRCC against real training.

``--num-models`` CNNs of a user's ``FunctionSpace`` (depth 1-4, width 8-64, kernels 3/5, with or
without a stride-2 first layer) are trained stand-alone on digits (Ray tasks), and the same
models are scored by ``raynas predict``'s reference predictor (fitted on ``--num-archs`` NB201
architectures of the table, 0 labels of this family).  Printed: SRCC of the prediction with the
measured accuracy, beside what parameter count and FLOPs alone achieve; how much each model's
prediction moves between a 50-architecture and a ``--num-archs`` reference, against its stated
uncertainty; the time of each fit.

    python bench/predict_user_models.py --benchmark ../shared/benchmarks/nb201_all.parquet --num-models 32
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import ray
from ray import tune
from scipy.stats import spearmanr
from torch import nn

from predictors.reference import Reference
from raynas.data import load_dataset
from raynas.parallel import ray_session
from search_spaces import FunctionSpace


def user_cnn(depth, width, kernel, stride_first, num_classes=10, in_channels=3):
    layers, channels = [], in_channels
    for i in range(depth):
        stride = 2 if (i == 0 and stride_first) else 1
        layers += [nn.Conv2d(channels, width * (1 + i // 2), kernel, stride, kernel // 2), nn.BatchNorm2d(width * (1 + i // 2)), nn.ReLU()]
        channels = width * (1 + i // 2)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


SPACE = FunctionSpace(
    user_cnn,
    {"depth": tune.choice([1, 2, 3, 4]), "width": tune.choice([8, 16, 32, 64]), "kernel": tune.choice([3, 5]),
     "stride_first": tune.choice([False, True])},
    name="benchcnn",
)  # fmt: skip


def train(text: str, epochs: int, data: object) -> float:
    """Valid accuracy of the model ``text`` after ``epochs`` epochs of stand-alone training on digits."""
    from raynas.parallel import use_allotted_threads
    from raynas.trainables.standalone import ArchTraining

    use_allotted_threads()
    training = ArchTraining({**SPACE.encode(SPACE.parse(text)), "space": SPACE, "epochs": epochs}, data)
    for _ in range(epochs):
        result = training.step()
    return float(result["val_acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="../shared/benchmarks/nb201_all.parquet")
    parser.add_argument("--num-models", type=int, default=32)
    parser.add_argument("--num-archs", type=int, default=500, help="reference architectures of the full fit")
    parser.add_argument("--epochs", type=int, default=4, help="digits training epochs per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    archs = SPACE.sample_unique(args.num_models, args.seed)
    with ray_session():
        data = ray.put(load_dataset("digits"))
        task = ray.remote(num_cpus=1)(train)
        futures = [task.remote(a.text, args.epochs, data) for a in archs]
        fits = {}
        for num_archs in (50, args.num_archs):
            start = time.perf_counter()
            fits[num_archs] = Reference.from_table(args.benchmark, "nb201", "cifar10", num_archs, args.seed).fit()
            fits[num_archs].fit_seconds = time.perf_counter() - start
        measured = np.array(ray.get(futures))
    models = [SPACE.build(a, num_classes=10, in_shape=(3, 32, 32)) for a in archs]
    scores = {n: [ref.score(m) for m in models] for n, ref in fits.items()}
    full = scores[args.num_archs]
    predicted = np.array([s.predicted for s in full])
    params = np.array([s.params for s in full])
    print(f"{len(archs)} {SPACE.name} models, digits valid accuracy after {args.epochs} epochs: "
          f"{measured.min():.1f}-{measured.max():.1f} (mean {measured.mean():.1f})")  # fmt: skip
    print("| ranking of the measured accuracy by | SRCC |")
    print("| --- | --- |")
    print(f"| raynas predict (NB201 reference, {args.num_archs} archs) | {spearmanr(predicted, measured)[0]:.3f} |")
    print(f"| raynas predict (NB201 reference, 50 archs) | {spearmanr([s.predicted for s in scores[50]], measured)[0]:.3f} |")
    print(f"| parameter count | {spearmanr(params, measured)[0]:.3f} |")
    moved = np.abs(predicted - np.array([s.predicted for s in scores[50]]))
    stated = np.array([s.std for s in full])
    print(f"\nprediction moved between 50 and {args.num_archs} reference archs: median {np.median(moved):.2f}, "
          f"max {moved.max():.2f}; within the stated std for {np.mean(moved <= stated) * 100:.0f}% of the models "
          f"(median std {np.median(stated):.2f}); out of distribution: {sum(s.out_of_distribution for s in full)}")  # fmt: skip
    print(f"distinct predictions: {len(set(np.round(predicted, 3)))} of {len(predicted)}")
    for n, ref in fits.items():
        print(f"fit on {n} reference archs: {ref.fit_seconds:.0f} s")


if __name__ == "__main__":
    main()
