"""Architecture "training" by table look-up: the fast trainable for benchmarking searchers.

Reports the same metric names as stand-alone training, one report per schedule the table
holds (e.g. epoch 12, then epoch 200), so early-stopping schedulers can act on the short
schedule.  ``simulated_time_s`` is the table's training time for the epochs reported, so a
search can be budgeted in simulated time.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from raynas.benchmarks import TabularBenchmark
from raynas.trainables.base import ReconfigurableTrainable


@lru_cache(maxsize=4)
def load_benchmark(path: str, space: str, dataset: str) -> TabularBenchmark:
    """One table per process, however many trials (actors are reused) ask for it."""
    return TabularBenchmark.from_parquet(path, space, dataset)


class BenchmarkTrainable(ReconfigurableTrainable):
    """Config keys: the space's keys, ``space``, ``benchmark`` (Parquet path), ``dataset``.

    Pass ``benchmark=`` through ``tune.with_parameters`` to share one loaded table.
    """

    def _configure(self, config: dict[str, Any]) -> None:
        if self.inputs.get("benchmark") is not None:
            self.table = self.inputs["benchmark"]
        else:
            if "benchmark" not in config:
                raise ValueError("BenchmarkTrainable needs config['benchmark'] (a Parquet path) or benchmark= via tune.with_parameters")
            self.table = load_benchmark(str(config["benchmark"]), config.get("space", "nb201"), config.get("dataset", "cifar10"))
        self.arch = self.table.space.decode(config)
        self.table.rows(self.arch)  # unknown architecture: fail now, naming it
        full = self.table.full_epochs
        self.schedule: list[int | None] = [*self.table.short_schedules("valid"), full]
        self.position = 0

    def step(self) -> dict[str, Any]:
        epochs = self.schedule[self.position]
        self.position += 1
        result: dict[str, Any] = {
            "epoch": epochs,
            "val_acc": self.table.query(self.arch, "valid", epochs),
            "arch": str(self.arch),
            "node_id": self.node_id,
            **self.table.info(self.arch),
        }
        if self.table.has("test", epochs):
            result["test_acc"] = self.table.query(self.arch, "test", epochs)
        per_epoch = result.pop("train_time_per_epoch_s", None)
        if per_epoch is not None and epochs is not None:
            result["simulated_time_s"] = per_epoch * epochs
        result.pop("train_time_s", None)
        if "latency_s" in result:  # the unit every other trainable reports latency in
            result["latency_ms"] = 1e3 * result["latency_s"]
        result["done"] = self.position >= len(self.schedule)
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> dict:
        return {"position": self.position, "arch": str(self.arch)}

    def load_checkpoint(self, checkpoint: dict) -> None:
        self.position = int(checkpoint["position"])
