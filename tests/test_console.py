"""A search's console: one progress line per finished trial (in place on a terminal), none
of Tune's per-trial boxes, experiment header or snapshot warnings; ``--verbose`` for those."""
from __future__ import annotations

import io
from types import SimpleNamespace

from raynas.cli import main as cli_main
from raynas.search_progress import SearchProgress


def _trial(trial_id: str, status: str, **result: object) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result)


def test_the_progress_line_counts_trials_and_keeps_the_best():
    out = io.StringIO()
    progress = SearchProgress(4, "params", "min", stream=out)
    trials = [_trial("a", "RUNNING", params=30, arch="A"), _trial("b", "RUNNING", params=20, arch="B"), _trial("c", "PENDING")]
    progress.on_trial_result(0, trials, trials[0], {"params": 30, "arch": "A"})
    assert out.getvalue() == ""  # a log file gets whole lines, one per finished trial
    progress.on_trial_complete(0, trials, trials[1])
    trials[1].status = "TERMINATED"  # as Tune sets it after the callbacks
    progress.on_trial_error(0, trials, trials[0])
    first, second = out.getvalue().splitlines()
    assert first.startswith("[1/4 done, 1 running, 0 errored]  best params 20  B  elapsed 0:00, ETA")
    assert second.startswith("[2/4 done, 0 running, 1 errored]")
    pickled = __import__("pickle").loads(__import__("pickle").dumps(progress))  # Tune saves it with the experiment
    assert pickled.best == (20.0, "B") and pickled.stream is None


def test_a_search_prints_progress_lines_and_no_tune_noise(tmp_path, capfd):
    flags = ["search", "--num-samples", "3", "--epochs", "3", "--storage", str(tmp_path), "--name", "quiet",
             "--dataset", "synthetic:64", "--set", 'build={"C": 4, "N": 1}', "--checkpoint-every", "0"]  # fmt: skip
    assert cli_main(flags) == 0
    out, err = capfd.readouterr()
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert [line[:4] for line in progress] == ["[1/3", "[2/3", "[3/3"], err
    assert progress[-1].startswith("[3/3 done, 0 running, 0 errored]  best val_acc")
    for noise in ("snapshotting", "Configuration for experiment", "Trial status", "Started a local Ray instance",
                  "Checkpoint successfully created", "tensorboard"):  # fmt: skip
        assert noise not in out + err, noise
    assert "best architecture" in out
