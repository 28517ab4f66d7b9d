"""raynas on a CUDA machine: every GPU claim checked where a GPU exists.

1. A search of 8 stand-alone trials at 0.5 GPU each (two per GPU), bf16, on CIFAR-shaped
   synthetic data, through ``run_search`` as ``raynas search --gpus-per-trial 0.5`` runs it;
   asserts every trial reported a ``cuda`` device; images/s per trial and the speed-up of
   one trial over the same training on this machine's CPU.
2. Jacobian features of NB201 architectures on the GPU against the CPU (same numbers within
   a tolerance, and the time each takes).
3. CG-predictor inference on the GPU against the CPU (graphs already traced).

    python bench/gpu_check.py                 # on a machine with an NVIDIA GPU
    python bench/gpu_check.py --allow-cpu     # the same script, scaled down, on the CPU

Without a GPU (and without ``--allow-cpu``) it exits 2 saying so: no GPU claim goes untested.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from raynas.data import load_dataset
from raynas.experiment import SearchSettings, run_search
from raynas.trainables.standalone import ArchTraining
from search_spaces import get_space

SPACE = get_space("nb201")


def search(storage: Path, gpu: bool, trials: int, images: int, build: dict, epochs: int) -> list[dict]:
    """The rows of ``trials.parquet`` of a search with ``trials`` trials at 0.5 GPU each."""
    settings = SearchSettings(
        space="nb201", searcher="random", dataset=f"synthetic:{images}@32", num_samples=trials,
        max_concurrent=trials, gpus_per_trial=0.5 if gpu else 0.0, epochs=epochs, storage=str(storage),
        name="gpu-check", trainer_options={"precision": "bf16", "build": build, "batch_size": 256},
    )  # fmt: skip
    outcome = run_search(settings)
    return pq.read_table(outcome.trials_path).to_pylist()


def cpu_images_per_s(arch: str, images: int, build: dict) -> float:
    """Images/s of one epoch (train + evaluation) of ``arch`` on the CPU, as a trial reports it."""
    config = {**SPACE.encode(SPACE.parse(arch)), "epochs": 1, "batch_size": 256, "device": "cpu",
              "precision": "bf16", "build": build}  # fmt: skip
    training = ArchTraining(config, load_dataset(f"synthetic:{images}@32"))
    return training.data.size("train") / training.step()["epoch_time_s"]


def jacobians(device: str, archs: list[str], inputs: torch.Tensor) -> tuple[np.ndarray, float]:
    from predictors.jacobian import jacobian_features

    start = time.perf_counter()
    features = np.stack([jacobian_features(a, SPACE, inputs=inputs, build={"C": 8, "N": 1}, device=device) for a in archs])
    return features, time.perf_counter() - start


def cg_inference(archs: list, device: str, fit_count: int) -> tuple[np.ndarray, float]:
    """Predictions of a small CG predictor (fitted on parameter counts) and the inference time."""
    from predictors.cg import CGPredictor

    labels = [sum(p.numel() for p in SPACE.build(a, num_classes=10, C=4, N=1).parameters()) for a in archs[:fit_count]]
    predictor = CGPredictor(epochs=2, n_heads=2, device=device, seed=0, use_ray=False)
    predictor.fit(archs[:fit_count], labels)
    predictor.predict(archs)  # traces every graph once
    start = time.perf_counter()
    mean, _ = predictor.predict(archs)
    return mean, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-cpu", action="store_true", help="run scaled down on the CPU (checks the script)")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    if not gpu and not args.allow_cpu:
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU machine, "
              "or with --allow-cpu to check the script on the CPU", file=sys.stderr)  # fmt: skip
        return 2
    device = "cuda" if gpu else "cpu"
    full = gpu
    trials, images, epochs = (8, 8192, 2) if full else (2, 256, 1)
    build = {"C": 16, "N": 5} if full else {"C": 4, "N": 1}
    print(f"device: {torch.cuda.get_device_name(0) if gpu else 'cpu (--allow-cpu, scaled down)'}")

    with tempfile.TemporaryDirectory() as tmp:
        rows = search(Path(tmp), gpu, trials, images, build, epochs)
    devices = sorted({r.get("device") for r in rows})
    print(f"\n1. search: {len(rows)} trials at {0.5 if gpu else 0} GPU each, bf16, NB201 {build}, {images} synthetic 3x32x32")
    assert len(rows) == trials and all(r["status"] == "TERMINATED" for r in rows), [r.get("error") for r in rows]
    assert all(str(d).startswith("cuda") for d in devices) or not gpu, f"trials ran on {devices}"
    train = load_dataset(f"synthetic:{images}@32").size("train")  # the images each trial's epoch trains on
    speeds = sorted(train / r["epoch_time_s"] for r in rows)
    print(f"   devices reported: {devices}")
    print(f"   images/s per trial (train + eval epoch): median {np.median(speeds):.0f}, min {speeds[0]:.0f}, max {speeds[-1]:.0f}")
    cpu = cpu_images_per_s(rows[0]["arch"], min(images, 1024), build)
    print(f"   the first trial's architecture on this CPU: {cpu:.0f} images/s (train + eval epoch) -> "
          f"GPU trial / CPU = {np.median(speeds) / cpu:.1f}x")  # fmt: skip

    archs = [str(SPACE.sample(np.random.default_rng(i))) for i in range(8)]
    inputs = load_dataset("synthetic:256@32").sample(64)[0]
    on_cpu, t_cpu = jacobians("cpu", archs, inputs)
    here, t_here = jacobians(device, archs, inputs)
    gap = float(np.abs(here - on_cpu).max() / (np.abs(on_cpu).max() + 1e-12))
    print(f"\n2. Jacobian features, {len(archs)} archs x 4 inits x 64 images: cpu {t_cpu:.2f} s, {device} {t_here:.2f} s; "
          f"max relative difference {gap:.1e}")  # fmt: skip
    assert gap < 1e-3, "the GPU features differ from the CPU ones"

    many = [SPACE.sample(np.random.default_rng(100 + i)) for i in range(512 if full else 48)]
    mean_cpu, t_cpu = cg_inference(many, "cpu", 32)
    mean_here, t_here = cg_inference(many, device, 32)
    agree = float(np.corrcoef(mean_cpu, mean_here)[0, 1])
    print(f"\n3. CG predictor inference, {len(many)} graphs: cpu {t_cpu:.2f} s, {device} {t_here:.2f} s; "
          f"correlation of the two predictions {agree:.4f}")  # fmt: skip
    assert agree > 0.99, "the GPU predictions differ from the CPU ones"
    return 0


if __name__ == "__main__":
    sys.exit(main())
