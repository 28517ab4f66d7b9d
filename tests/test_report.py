"""``raynas report``: one self-contained HTML page per experiment, checked as a file and in a
real headless Chromium (plots load, the table sorts on a header click, cells are drawn, no
console errors).  Most folders are written by hand from realistic values; one is a real search."""
from __future__ import annotations

import html
import json
import re
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import benchmark_file
from raynas.cli import main as cli_main
from raynas.report import write_report
from search_spaces import FunctionSpace, get_space

NB201 = get_space("nb201")


def make_experiment(folder: Path, settings: dict | None, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "trials.parquet")
    if settings is not None:
        (folder / "raynas_settings.json").write_text(json.dumps(settings, indent=1, sort_keys=True))
    return folder


def nb201_rows(n: int = 8) -> list[dict]:
    """Trials as ``trials_table`` writes them: start order, one failed trial without metrics."""
    rows = []
    for i in range(n):
        arch = NB201.sample(i)
        failed = i == 3
        rows.append({
            "trial_id": f"t{i:04d}", "status": "ERROR" if failed else "TERMINATED", "arch": str(arch),
            "config": json.dumps(NB201.encode(arch)), "error": "FloatingPointError: non-finite training loss" if failed else None,
            "val_acc": None if failed else [71.5, 88.2, 9.8, 0, 90.3, 85.0, 100.0, 87.1][i],
            "params": None if failed else float(100_000 + 37_000 * i), "epoch": None if failed else 4,
            "time_total_s": 3.5 + i, "hostname": "vm",
        })  # fmt: skip
    return rows


SETTINGS = {
    "space": "nb201", "searcher": "rea", "trainable": "standalone", "dataset": "digits", "metric": "val_acc",
    "mode": "max", "num_samples": 8, "objectives": {"val_acc": "max", "params": "min"}, "name": "hand-made",
    "retrain": {"epochs": 50},  # a key a `raynas train` folder may add
}  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = make_experiment(tmp_path_factory.mktemp("exp") / "hand-made", SETTINGS, nb201_rows())
    (folder / "x_t0006_y" / "checkpoint_000001").mkdir(parents=True)  # Tune's trial folder of the best trial
    return write_report(folder)


def test_report_is_one_self_contained_page(report):
    text = report.read_text()
    assert report.name == "report.html"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page must not load anything from a network"
    images = re.findall(r'<img src="data:image/png;base64,', text)
    assert len(images) == 2 + 3  # trajectory, Pareto front, the three best cells
    assert text.count("<tr") - text.count("<tr><td>") >= 8  # the trials table (besides the key-value tables)
    assert "FloatingPointError: non-finite training loss" in text
    assert "x_t0006_y/checkpoint_000001" in text  # the best trial's checkpoint
    assert str(NB201.sample(6)) in text and "{\"epochs\": 50}" in html.unescape(text)  # the best arch; an extra settings key


def test_the_best_cells_are_drawn_best_first(report):
    text = report.read_text()
    heads = re.findall(r"<figcaption><b>#(\d)  ([^<]+)</b>", text)
    assert [int(n) for n, _ in heads] == [1, 2, 3]
    assert [arch for _, arch in heads] == [str(NB201.sample(i)) for i in (6, 4, 1)]  # 100.0, 90.3, 88.2


def test_report_tolerates_a_folder_without_settings_arch_or_status(tmp_path):
    folder = make_experiment(tmp_path / "bare", None, [{"trial_id": "a", "val_acc": 50.0}, {"trial_id": "b", "val_acc": 60.0}])
    text = write_report(folder).read_text()
    assert "nothing to draw" in text and "has no raynas_settings.json" in text
    assert text.count("data:image/png") == 1  # the trajectory only


def test_a_space_that_cannot_be_loaded_gives_a_note_not_a_crash(tmp_path):
    """A user's space is saved by name only; a later process cannot find it.  The caller that
    still holds the space object (``raynas search`` at its end) passes it and gets the drawings."""
    from ray import tune

    space = FunctionSpace(lambda depth, width, num_classes, in_shape: None, {"depth": tune.choice([1, 2, 3]),
                          "width": tune.choice([8, 16])}, name="my-own-cnn", register=False)  # fmt: skip
    archs = [str(space.decode({"depth": d, "width": 8})) for d in (1, 2, 3)]
    rows = [{"trial_id": f"t{i}", "status": "TERMINATED", "arch": a, "val_acc": 50.0 + i} for i, a in enumerate(archs)]
    folder = make_experiment(tmp_path / "own", {**SETTINGS, "space": "my-own-cnn", "objectives": {}}, rows)
    text = write_report(folder).read_text()
    assert "The cells cannot be drawn" in text and "my-own-cnn" in text and "cell of" not in text
    text = write_report(folder, space=space).read_text()
    assert "cannot be drawn" not in text and text.count('alt="cell of') == 3


def test_cli_report_writes_the_page_and_names_it(tmp_path, capsys):
    folder = make_experiment(tmp_path / "cli", SETTINGS, nb201_rows(4))
    assert cli_main(["report", str(folder), "--top", "1"]) == 0
    assert f"report  {folder / 'report.html'}" in capsys.readouterr().out
    assert (folder / "report.html").read_text().count('alt="cell of') == 1
    assert cli_main(["report", str(tmp_path / "missing")]) == 2
    assert "trials.parquet does not exist" in capsys.readouterr().err


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    pytest.skip("no chromium binary on PATH (apt-get install -y chromium); the page is not checked in a browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    binary = chromium_binary()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])  # --no-sandbox: CI runs as root
        yield browser
        browser.close()


def open_page(browser, path: Path):
    """The page loaded in a 1280x900 window, and the console errors it produced."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


def column(page, name: str) -> list[str]:
    index = page.eval_on_selector_all("#trials thead th", "(hs, n) => hs.findIndex(h => h.textContent.trim() === n)", name)
    assert index >= 0, f"no column {name}"
    return page.eval_on_selector_all("#trials tbody tr", "(rs, i) => rs.map(r => r.cells[i].textContent.trim())", index)


def test_the_page_renders_in_chromium_and_the_table_sorts(browser, report):
    page, errors = open_page(browser, report)
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 5 and min(widths) > 0, widths
    assert page.eval_on_selector_all("#cells figure img", "imgs => imgs.filter(i => i.naturalHeight > 0).length") == 3
    assert column(page, "#") == [str(i) for i in range(1, 9)]
    page.click("#trials thead th:text-is('val_acc')")
    numbers = [float(v) for v in column(page, "val_acc") if v]
    assert numbers == sorted(numbers) and numbers[0] == 9.8 and numbers[-1] == 100  # numerically: as text "100" < "71.5" < "9.8"
    assert column(page, "val_acc")[-1] == ""  # the failed trial last
    page.click("#trials thead th:text-is('val_acc')")
    assert [float(v) for v in column(page, "val_acc") if v] == sorted(numbers, reverse=True)
    page.click("#trials thead th:text-is('trial_id')")
    assert column(page, "trial_id") == sorted(column(page, "trial_id"))
    assert not errors, errors
    page.close()


def test_report_of_a_real_search(ray_session, browser, tmp_path):
    """A real multi-objective search on the NB201 table; the page must show what Tune wrote."""
    from raynas.experiment import SearchSettings, run_search

    settings = SearchSettings(
        space="nb201", searcher="random", trainable="benchmark", benchmark=str(benchmark_file("nb201_all.parquet")),
        dataset="cifar10", num_samples=6, storage=str(tmp_path), name="real", objectives={"val_acc": "max", "params": "min"},
    )  # fmt: skip
    outcome = run_search(settings)
    start = time.perf_counter()
    path = write_report(outcome.experiment_dir)
    elapsed = time.perf_counter() - start
    text = path.read_text()
    assert elapsed < 30 and path.stat().st_size < 1_000_000, (elapsed, path.stat().st_size)
    assert outcome.best_arch in text and "Pareto front" in text and "checkpoint_" in text
    page, errors = open_page(browser, path)
    assert min(page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")) > 0
    assert len(column(page, "arch")) == 6 and set(column(page, "status")) == {"TERMINATED"}
    assert page.eval_on_selector_all("#cells figure", "fs => fs.length") == 3
    assert not errors, errors
    page.close()
