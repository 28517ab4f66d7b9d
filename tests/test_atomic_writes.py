"""A crash while writing a result file must leave the previous file whole and readable.

Two kinds of crash: an exception after half the bytes are on disk (``pq.write_table``
replaced by one that writes half a file and raises), and a real ``SIGKILL`` of a process
that rewrites a file in a loop.  Covered writers: ``raynas.io.write_parquet_atomic``
(trials and Pareto tables), ``ArchEmbeddings.to_parquet`` and the Jacobian feature store
(part files and ``_meta.json``).
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.io import atomic_path, atomic_write, write_parquet_atomic

REPO = Path(__file__).resolve().parents[1]


class SimulatedCrash(OSError):
    pass


def half_writer(real: Any) -> Any:
    """A ``pq.write_table`` that puts the first half of the real file at ``where`` and fails."""

    def write_table(table: pa.Table, where: Any, *args: Any, **kwargs: Any) -> None:
        sink = io.BytesIO()
        real(table, sink, *args, **kwargs)
        data = sink.getvalue()
        Path(where).write_bytes(data[: len(data) // 2])
        raise SimulatedCrash(f"simulated crash after {len(data) // 2} of {len(data)} bytes")

    return write_table


def debris(folder: Path, keep: set[str]) -> list[str]:
    """Files in ``folder`` other than ``keep``: a failed write must leave none behind."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_results_table_survives_a_crash_mid_write(tmp_path, monkeypatch):
    path = tmp_path / "trials.parquet"
    old = pa.table({"trial_id": ["a", "b"], "val_acc": [90.0, 91.0]})
    write_parquet_atomic(old, path)
    monkeypatch.setattr(pq, "write_table", half_writer(pq.write_table))
    with pytest.raises(SimulatedCrash):
        write_parquet_atomic(pa.table({"trial_id": ["c"] * 1000, "val_acc": [1.0] * 1000}), path)
    monkeypatch.undo()
    assert pq.read_table(path).equals(old)
    assert debris(tmp_path, {"trials.parquet"}) == []


def test_the_crash_simulation_would_corrupt_a_plain_write(tmp_path, monkeypatch):
    """The same crash, written straight to the target, leaves an unreadable file: the check
    above fails for a non-atomic writer."""
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    monkeypatch.setattr(pq, "write_table", half_writer(pq.write_table))
    with pytest.raises(SimulatedCrash):
        pq.write_table(pa.table({"x": list(range(1000))}), path)
    monkeypatch.undo()
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(path)


def test_embeddings_table_survives_a_crash_mid_write(tmp_path, monkeypatch):
    from predictors.embeddings import ArchEmbeddings
    from search_spaces import get_space

    space = get_space("nb201")
    archs = [space.from_index(i) for i in range(4)]
    path = tmp_path / "emb.parquet"
    ArchEmbeddings(space, archs, np.eye(4)).to_parquet(path)
    more = [space.from_index(i) for i in range(4, 40)]
    monkeypatch.setattr(pq, "write_table", half_writer(pq.write_table))
    with pytest.raises(SimulatedCrash):
        ArchEmbeddings(space, more, np.ones((36, 4))).to_parquet(path)
    monkeypatch.undo()
    back = ArchEmbeddings.from_parquet(path, "nb201")
    assert back.archs == archs and np.array_equal(back.vectors, np.eye(4, dtype=np.float32))
    assert debris(tmp_path, {"emb.parquet"}) == []


def test_feature_store_keeps_finished_parts_and_its_meta(tmp_path, monkeypatch):
    from predictors import jacobian_store as store
    from search_spaces import get_space

    space = get_space("nb201")
    meta = {"space": "nb201", "num_inits": 1, "batch_size": 2, "proj_dim": 3, "shape": [1, 2, 3]}
    atomic_write(tmp_path / store.META_FILE, json.dumps(meta))
    writer = store._PartWriter(tmp_path, meta, chunk=2)
    first = [space.from_index(i) for i in range(2)]
    for arch in first:
        writer.add(arch, np.zeros((1, 2, 3), dtype=np.float32))  # the second add writes part 0
    monkeypatch.setattr(pq, "write_table", half_writer(pq.write_table))
    writer.add(space.from_index(2), np.ones((1, 2, 3), dtype=np.float32))
    with pytest.raises(SimulatedCrash):
        writer.add(space.from_index(3), np.ones((1, 2, 3), dtype=np.float32))

    with pytest.raises(SimulatedCrash), atomic_path(tmp_path / store.META_FILE) as tmp:
        tmp.write_bytes(b'{"space": "nb2')
        raise SimulatedCrash("simulated crash while writing _meta.json")
    monkeypatch.undo()
    assert store.read_meta(tmp_path) == meta
    assert [p.name for p in store.part_files(tmp_path)] == ["part-000000.parquet"]
    keys, texts, features = store.read_features(tmp_path)
    assert sorted(keys) == sorted(a.key for a in first) and features.shape == (2, 1, 2, 3)
    assert debris(tmp_path, {store.META_FILE, "part-000000.parquet"}) == []


REWRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pyarrow as pa
    from raynas.io import write_parquet_atomic
    path, rows = sys.argv[1], int(sys.argv[2])
    version = 0
    while True:
        version += 1
        write_parquet_atomic(pa.table({"version": np.full(rows, version), "x": np.arange(rows, dtype=np.float64)}), path)
        print(version, flush=True)
    """
)


def test_file_stays_whole_when_the_writer_is_killed(tmp_path):
    """SIGKILL a process rewriting a 16 MB table at random moments: the file on disk is
    always one complete version."""
    path, rows = tmp_path / "trials.parquet", 1_000_000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = np.random.default_rng(0)
    seen = set()
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", REWRITER, str(path), str(rows)], stdout=subprocess.PIPE, env=env, text=True)
        try:
            assert proc.stdout.readline().strip(), "the writer finished no version"
            time.sleep(float(rng.uniform(0.0, 0.4)))  # lands mid-write most of the time
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        table = pq.read_table(path)
        versions = set(table.column("version").to_pylist())
        assert table.num_rows == rows and len(versions) == 1
        assert table.column("x").to_pylist()[-1] == rows - 1
        seen |= versions
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "trials.parquet"]
        assert all(n.startswith(".trials.parquet.") and n.endswith(".tmp") for n in leftovers), leftovers
    assert seen, "no version was ever read back"
