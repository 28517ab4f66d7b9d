"""Experiments in shared storage given as a URI (``s3://`` on a cluster; ``file://`` here):
Tune writes there, and so do raynas's settings and results, and ``--resume URI`` works."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas import storage
from raynas.experiment import SearchSettings, load_settings, local_folder, run_search
from search_spaces import get_space


def test_uris_and_local_paths_are_told_apart(tmp_path):
    assert storage.is_uri("s3://bucket/runs") and not storage.is_uri(tmp_path)
    assert storage.resolve("s3://bucket/runs") == "s3://bucket/runs"
    assert storage.resolve("~/x") == str(Path("~/x").expanduser().resolve())
    assert storage.join("s3://bucket/runs/", "exp", "a.json") == "s3://bucket/runs/exp/a.json"
    assert local_folder("s3://bucket/runs/exp") == Path("~/ray_results/exp").expanduser()


def test_upload_and_read_back_through_a_uri(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    remote = f"file://{tmp_path}/remote/exp"
    storage.upload([local / "a.txt"], remote)
    assert storage.read_text(f"{remote}/a.txt") == "hello"
    assert storage.read_text(f"{remote}/missing.txt") is None
    with pytest.raises(ValueError, match="cannot open storage"):
        storage.read_text("nosuchscheme://bucket/a.txt")


def _table(path: Path) -> Path:
    space = get_space("nb201")
    archs = [space.from_index(i).text for i in range(15625)]  # every cell: no trial looks up a missing one
    pq.write_table(pa.table({
        "arch_str": archs,
        "cifar10_valid_acc": [50.0 + i % 40 for i in range(len(archs))],
        "cifar10_test_acc": [49.0 + i % 40 for i in range(len(archs))],
    }), path)  # fmt: skip
    return path


def test_search_writes_to_and_resumes_from_a_storage_uri(ray_session, tmp_path):
    settings = SearchSettings(
        trainable="benchmark", benchmark=str(_table(tmp_path / "table.parquet")), dataset="cifar10",
        num_samples=5, storage=f"file://{tmp_path}/shared", name="exp",
    )  # fmt: skip
    outcome = run_search(settings)
    folder = tmp_path / "shared" / "exp"
    assert outcome.num_trials == 5 and outcome.num_errors == 0 and (folder / "trials.parquet").exists()
    saved = load_settings(f"file://{folder}")
    assert saved is not None and saved.num_samples == 5 and saved.storage == settings.storage
    again = run_search(SearchSettings(), resume=f"file://{folder}")  # settings come from the URI
    assert again.num_trials == 5 and pq.read_table(folder / "trials.parquet").num_rows == 5
