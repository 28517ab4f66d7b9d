"""Shared fixtures.  Benchmark tables are found through RAYNAS_BENCHMARKS (default
``../shared/benchmarks`` beside the repo); tests that need them skip with the reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(os.environ.get("RAYNAS_BENCHMARKS", REPO.parent / "shared" / "benchmarks"))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread, as in a Ray worker: two spinning OpenMP threads on a shared 2-core
    machine run ~7-20x slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def benchmark_file(name: str) -> Path:
    """Path of a shared benchmark table, or skip the test saying which file is absent."""
    path = BENCHMARKS / name
    if not path.exists():
        pytest.skip(f"benchmark table {path} not found (set RAYNAS_BENCHMARKS to the folder holding it)")
    return path


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray session per test module (2 CPUs, no dashboard), shut down afterwards."""
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)  # workers import test helpers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
