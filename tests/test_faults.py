"""Faults and a real multi-node cluster, each test asserting that no trial is lost.

* a trial's worker process is SIGKILLed mid-training: the trial resumes from its last
  checkpoint (``SearchSettings.max_failures``) and still trains every epoch exactly once;
* ``raynas search --address`` on a two-node Ray cluster started here (``ray start --head``
  on loopback plus a second ``ray start --address``): trials run on both nodes;
* the worker node is SIGKILLed mid-search: the search still finishes every trial;
* the experiment's disk fills mid-search: a clear error naming the folder, exit 1, the trials
  table whole; once there is room ``--resume`` finishes, from the trials table where the full
  disk cut Tune's own state short.

The cluster tests (``-m "not cluster"`` deselects them) start every Ray process in a
session of its own and kill exactly those process trees afterwards, never with
``ray stop``, which would also stop any other Ray on this machine.
(An interrupted and resumed driver is covered by ``test_tune_integration``.)
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import pyarrow.parquet as pq
import pytest

from conftest import REPO
from search_spaces import get_space

SPACE = get_space("nb201")
RAY = str(Path(sys.executable).with_name("ray"))
#: trials long enough (~1-3 s) that the second node's actor is up before the first
#: node's actor could take every trial (Tune reuses actors), yet cheap on 2 shared cores
CLUSTER_SEARCH = [
    "--space", "nb201", "--searcher", "random", "--trainable", "standalone", "--dataset", "synthetic:2048",
    "--set", 'build={"C": 4, "N": 1}', "--max-concurrent", "2", "--checkpoint-every", "0",
]  # fmt: skip


def _env() -> dict[str, str]:
    """Environment of every Ray process started here: no token auth on a private loopback
    cluster, the repository importable, and a dead node noticed within seconds, not 30."""
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_timeout_ms": "1000",
        "RAY_health_check_failure_threshold": "3",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(poll)


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) of every process, from /proc."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _tree(root: int) -> set[int]:
    """Live (not zombie) processes started by ``root``: its descendants and its process group."""
    table = _processes()
    found = {pid for pid, (_, pgid, state) in table.items() if pgid == root and state != "Z"}
    found |= {root} if root in table and table[root][2] != "Z" else set()
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, state) in table.items() if ppid in found and state != "Z"} - found
        found |= more
        grew = bool(more)
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` (started with ``start_new_session``) and everything it started,
    then wait until none of them is left."""
    pids = _tree(process.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    _wait_for(lambda: not _tree(process.pid) & pids, 30, f"processes {sorted(pids)} to die")


class RayNode:
    """One ``ray start --block`` node in its own session (so its whole tree can be killed)."""

    def __init__(self, temp_dir: Path, log: Path, args: list[str]) -> None:
        self.temp_dir = temp_dir
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [RAY, "start", "--block", "--num-cpus", "1", "--object-store-memory", "80000000",
                 "--temp-dir", str(temp_dir), "--disable-usage-stats", *args],
                stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
            )  # fmt: skip

    def node_id(self) -> str:
        """Ray's id of this node (it names files in the session folder), once it is up."""
        found: list[Path] = []

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            found[:] = list(self.temp_dir.glob("session_latest/metrics_agent_port_*"))
            return bool(found)

        _wait_for(up, 120, f"the Ray node in {self.temp_dir} to start")
        return found[0].name.rsplit("_", 1)[1]

    def kill(self) -> None:
        if self.process.returncode is None or _tree(self.process.pid):
            _kill_tree(self.process)


@pytest.fixture(scope="module")
def cluster_root() -> Iterator[Path]:
    """A short folder for the nodes' temp dirs (Ray's socket paths must stay under 108 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="rn-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def head(cluster_root: Path) -> Iterator[tuple[str, RayNode]]:
    """A head node on loopback (1 CPU, no dashboard): its address and the node."""
    port = _free_port()
    node = RayNode(cluster_root / "head", cluster_root / "head.log", [
        "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard=false",
    ])  # fmt: skip
    try:
        node.node_id()
        yield f"127.0.0.1:{port}", node
    finally:
        node.kill()
    assert not _tree(node.process.pid), "head node processes left behind"


@pytest.fixture
def worker(cluster_root: Path, head: tuple[str, RayNode]) -> Iterator[RayNode]:
    """A second node (1 CPU) joined to ``head``; killed after the test."""
    name = f"worker-{time.monotonic_ns()}"
    node = RayNode(cluster_root / name, cluster_root / f"{name}.log", [
        "--address", head[0], "--node-ip-address", "127.0.0.1",
    ])  # fmt: skip
    try:
        _wait_for(lambda: node.node_id() in _alive_nodes(head[0]), 120, f"{name} to join the cluster", poll=1)
        yield node
    finally:
        node.kill()
    assert not _tree(node.process.pid), "worker node processes left behind"


def _alive_nodes(address: str) -> set[str]:
    """The ids of the nodes the head's GCS counts as alive: a node's own files appear before it
    has registered, and a search started in between schedules everything on the head."""
    probe = "import ray; ray.init(address=%r, logging_level='ERROR'); print(*[n['NodeID'] for n in ray.nodes() if n['Alive']])"
    out = subprocess.run([sys.executable, "-c", probe % address], capture_output=True, text=True, env=_env(), timeout=60)
    return set(out.stdout.split())


def _search(address: str, storage: Path, name: str, extra: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start ``raynas search --address`` as a subprocess; its log file."""
    log = storage / f"{name}.log"
    storage.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "raynas.cli", "search", "--address", address, "--storage", str(storage),
               "--name", name, *CLUSTER_SEARCH, *extra]  # fmt: skip
    with open(log, "wb") as out:
        driver = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                  start_new_session=True)  # fmt: skip
    return driver, log


def _finish(driver: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Wait for the driver; on a timeout or failure kill it and show its log."""
    try:
        code = driver.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if driver.returncode is None or _tree(driver.pid):
            _kill_tree(driver)
    assert code == 0, f"raynas search {'timed out' if code is None else f'exited {code}'}:\n{log.read_text()[-4000:]}"


def _trials(folder: Path, epochs: int, count: int) -> list[dict]:
    """``trials.parquet`` rows, after checking that it holds ``count`` finished trials of
    distinct architectures, each trained ``epochs`` epochs."""
    rows = pq.read_table(folder / "trials.parquet").to_pylist()
    assert len(rows) == count and all(r["status"] == "TERMINATED" for r in rows), rows
    assert all(r["epoch"] == epochs and r["training_iteration"] == epochs for r in rows), rows
    assert len({SPACE.parse(r["arch"]).key for r in rows}) == count
    return rows


def _running_on(folder: Path, node_id: str, min_epoch: int) -> str | None:
    """The id of a trial that has reported epoch ``min_epoch`` or later, unfinished, from
    ``node_id``, if any."""
    for result in folder.glob("*/result.json"):
        for line in result.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line being written
                continue
            if row.get("node_id") == node_id and row.get("epoch", 0) >= min_epoch and not row.get("done"):
                return row["trial_id"]
    return None


# ---------------------------------------------------------------- a trial's worker process dies


def test_killed_trial_worker_resumes_from_its_last_checkpoint(ray_session, tmp_path):
    """SIGKILL after epoch 2 of 3: the retry restores epoch 1's checkpoint and trains epochs
    2 and 3 (``iterations_since_restore`` 2), so the trial ends at epoch 3, not 4 or 5."""
    import fault_helpers  # noqa: F401  (registers the "dies-once" trainable)
    from raynas.experiment import SearchSettings, run_search

    marker = tmp_path / "killed"
    settings = SearchSettings(
        trainable="dies-once", searcher="random", dataset="synthetic:256", num_samples=2, max_concurrent=1, epochs=3, max_failures=1,
        storage=str(tmp_path), name="killed-worker", checkpoint_every_s=0,
        trainer_options={"build": {"C": 4, "N": 1}, "kill_marker": str(marker), "kill_at": 2},
    )  # fmt: skip
    outcome = run_search(settings)

    killed_pid, killed_arch = marker.read_text().split()
    rows = _trials(outcome.experiment_dir, epochs=3, count=2)
    victim = next(r for r in rows if r["arch"] == killed_arch)
    assert victim["iterations_since_restore"] == 2 and victim["pid"] != int(killed_pid)
    other = next(r for r in rows if r["arch"] != killed_arch)
    assert other["iterations_since_restore"] == 3  # never restored
    (reported,) = outcome.experiment_dir.glob(f"*{victim['trial_id']}*/result.json")
    assert [json.loads(line)["epoch"] for line in reported.read_text().splitlines()] == [1, 2, 3]


# ---------------------------------------------------------------- the experiment's disk fills


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A 100 kB tmpfs: a few table trials fill it (mounting needs root and a kernel that lets us)."""
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip() or 'mount failed'})")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_a_clear_error_and_resume_finishes_once_there_is_room(ray_session, tiny_disk, capsys):
    """Tune logs its own failed writes and runs on; raynas's final tables then cannot be
    written: exit 1 and one line saying where and why, not a traceback, and the trials table
    written while there was room is still whole.  Once there is room, ``--resume`` finishes
    the search: from Tune's state when it is whole, else from that table."""
    from conftest import benchmark_file
    from raynas.cli import main as cli_main

    table = benchmark_file("nb201_all.parquet")
    code = cli_main(["search", "--trainable", "benchmark", "--benchmark", str(table), "--dataset", "cifar10",
                     "--searcher", "rea", "--num-samples", "20", "--storage", str(tiny_disk), "--name", "full"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert f"could not write the results to {tiny_disk / 'full'}" in err and "No space left on device" in err
    kept = pq.read_table(tiny_disk / "full" / "trials.parquet").to_pylist()  # written while the disk had room
    assert 0 < len(kept) <= 20 and all(r["status"] == "TERMINATED" and r["val_acc"] > 0 for r in kept)
    assert f"holds the {len(kept)} trials finished by its last write" in err

    # the fault gone (room again), --resume finishes the 20 trials, keeping those already in the table
    subprocess.run(["mount", "-o", "remount,size=50m", str(tiny_disk)], check=True)
    assert cli_main(["search", "--resume", str(tiny_disk / "full")]) == 0
    rows = pq.read_table(tiny_disk / "full" / "trials.parquet").to_pylist()
    assert len(rows) == 20 and all(r["status"] == "TERMINATED" for r in rows)
    assert [r["trial_id"] for r in rows[: len(kept)]] == [r["trial_id"] for r in kept]
    assert len({SPACE.parse(r["arch"]).key for r in rows}) == 20


def test_resuming_from_a_cut_short_tune_state_is_refused_before_ray_starts(tmp_path, capsys):
    """Tune's state cut short by a full disk restores an experiment that forgot its trials,
    whose end then overwrote the trials table (seen: 1 trial of 20, exit 0): it is never
    restored; without a trials table and settings to continue from, exit 2 saying so."""
    from raynas.cli import main as cli_main
    from raynas.experiment import check_resumable

    folder = tmp_path / "cut"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="no Ray Tune experiment state"):
        check_resumable(folder)
    state = folder / "experiment_state-2026-01-01_00-00-00.json"
    state.write_text(json.dumps({"trial_data": [["x" * 100]] * 50}))
    check_resumable(folder)  # whole: fine
    state.write_text(state.read_text()[:1000])
    (folder / "trials.parquet").write_bytes(b"")
    assert cli_main(["search", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume {folder}" in err and state.name in err and "no trials table with settings" in err


def test_a_search_whose_tune_state_is_cut_short_continues_from_its_trials_table(ray_session, tmp_path, capsys):
    """Tune's state cut short, 5 of 12 trials in the table: --resume runs the 7 others (none
    proposed again: the searcher is told the 5) and keeps the 5 rows first."""
    from conftest import benchmark_file
    from raynas.cli import main as cli_main
    from raynas.io import write_parquet_atomic

    search = ["search", "--trainable", "benchmark", "--benchmark", str(benchmark_file("nb201_all.parquet")),
              "--dataset", "cifar10", "--searcher", "rea", "--num-samples", "12", "--storage", str(tmp_path), "--name", "cut"]  # fmt: skip
    assert cli_main(search) == 0
    folder = tmp_path / "cut"
    write_parquet_atomic(pq.read_table(folder / "trials.parquet").slice(0, 5), folder / "trials.parquet")
    kept = pq.read_table(folder / "trials.parquet").to_pylist()
    for state in folder.glob("experiment_state-*.json"):
        state.write_text(state.read_text()[:500])
    capsys.readouterr()
    assert cli_main(["search", "--resume", str(folder)]) == 0
    assert "continuing from the 5 trials in its trials table" in capsys.readouterr().err
    rows = pq.read_table(folder / "trials.parquet").to_pylist()
    assert len(rows) == 12 and [r["trial_id"] for r in rows[:5]] == [r["trial_id"] for r in kept]
    assert len({SPACE.parse(r["arch"]).key for r in rows}) == 12 and all(r["status"] == "TERMINATED" for r in rows)


# ---------------------------------------------------------------- a real two-node cluster


@pytest.mark.cluster
def test_search_on_a_two_node_cluster_uses_both_nodes(head, worker, tmp_path):
    """Trials last longer than a worker-node actor takes to start (seconds on a busy machine):
    with shorter ones Tune may hand every trial to the head's reused actor, which is legal."""
    address, head_node = head
    driver, log = _search(address, tmp_path, "two-nodes", ["--num-samples", "4", "--epochs", "20"])
    _finish(driver, log)
    rows = _trials(tmp_path / "two-nodes", epochs=20, count=4)
    assert {r["node_id"] for r in rows} == {head_node.node_id(), worker.node_id()}, \
        [(r["trial_id"], r["node_id"]) for r in rows]  # fmt: skip


@pytest.mark.cluster
def test_search_survives_losing_its_worker_node(head, worker, tmp_path):
    """The node is SIGKILLed (raylet, workers, all) while a trial trains there, past epoch 2
    (so epoch 1's checkpoint is on disk): Tune restores that trial on the head node and
    every requested trial finishes all its epochs."""
    address, head_node = head
    epochs = 12
    driver, log = _search(address, tmp_path, "lost-node", ["--num-samples", "4", "--epochs", str(epochs)])
    folder = tmp_path / "lost-node"
    victim: list[str] = []
    try:
        def on_worker() -> bool:
            if driver.poll() is not None:
                raise RuntimeError(f"the search ended before the node was killed:\n{log.read_text()[-4000:]}")
            victim[:] = [t for t in [_running_on(folder, worker.node_id(), min_epoch=2)] if t]
            return bool(victim)

        _wait_for(on_worker, 180, "a trial to train on the worker node")
        worker.kill()
    except BaseException:
        _kill_tree(driver)
        raise
    _finish(driver, log)
    rows = _trials(folder, epochs=epochs, count=4)
    moved = next(r for r in rows if r["trial_id"] == victim[0])
    assert moved["node_id"] == head_node.node_id() and moved["iterations_since_restore"] < epochs
