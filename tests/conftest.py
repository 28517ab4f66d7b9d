"""Shared fixtures.  Benchmark tables are found through RAYNAS_BENCHMARKS (default
``../shared/benchmarks`` beside the repo); tests that need them skip with the reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(os.environ.get("RAYNAS_BENCHMARKS", REPO.parent / "shared" / "benchmarks"))


def benchmark_file(name: str) -> Path:
    """Path of a shared benchmark table, or skip the test saying which file is absent."""
    path = BENCHMARKS / name
    if not path.exists():
        pytest.skip(f"benchmark table {path} not found (set RAYNAS_BENCHMARKS to the folder holding it)")
    return path
