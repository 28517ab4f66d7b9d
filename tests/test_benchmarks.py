"""TabularBenchmark: exact and canonical look-ups, any dataset prefix, clear errors."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import benchmark_file
from raynas.benchmarks import TabularBenchmark
from search_spaces import get_space

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def nb201() -> TabularBenchmark:
    return TabularBenchmark.from_parquet(benchmark_file("nb201_all.parquet"), SPACE, "cifar10")


def test_query_returns_the_rows_own_values(nb201):
    best = SPACE.from_index(6111)
    assert nb201.query(best, "test") == pytest.approx(94.37333, abs=1e-4)
    assert nb201.query(best, "valid") == pytest.approx(91.6067, abs=1e-4)
    assert nb201.query(best, "valid", epochs=200) == nb201.query(best, "valid")
    assert nb201.query(best, "valid", epochs=12) < nb201.query(best, "valid")
    info = nb201.info(best)
    assert info["params"] == 1073466 and info["train_time_s"] > 0


def test_unknown_schedule_and_split_list_what_exists(nb201):
    arch = SPACE.from_index(0)
    with pytest.raises(ValueError, match=r"epochs=50.*\('valid', 12\)"):
        nb201.query(arch, "valid", epochs=50)
    with pytest.raises(ValueError, match="split must be one of \\['valid', 'test'\\]"):
        nb201.query(arch, "train")


def test_unknown_dataset_lists_the_datasets_present():
    with pytest.raises(ValueError, match=r"'cifar100'.*\['cifar10'\]"):
        TabularBenchmark.from_parquet(benchmark_file("nb201_all.parquet"), "nb201", "cifar100")


def test_missing_architecture_is_a_key_error_naming_it():
    subset = TabularBenchmark.from_parquet(benchmark_file("nb201_zc_naslib_subset.parquet"), "nb201", "cifar10")
    outside = next(a for a in SPACE.enumerate() if a not in subset)
    with pytest.raises(KeyError, match=re.escape(str(outside))):
        subset.query(outside)


def test_isomorphic_spelling_falls_back_to_the_canonical_class(tmp_path):
    a = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    b = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"arch_str": [a], "cifar10_valid_acc": [90.0]}), path)
    table = TabularBenchmark.from_parquet(path, "nb201", "cifar10")
    assert table.query(SPACE.parse(b)) == 90.0


def test_any_dataset_prefix_works(tmp_path):
    path = tmp_path / "c100.parquet"
    texts = [str(SPACE.from_index(i)) for i in range(3)]
    pq.write_table(
        pa.table({"arch_str": texts, "cifar100_valid_acc": [60.0, 61.0, 62.0], "cifar100_test_acc_12ep": [1.0, 2.0, 3.0]}),
        path,
    )
    table = TabularBenchmark.from_parquet(path, "nb201", "cifar100")
    assert table.query(SPACE.from_index(2)) == 62.0
    assert table.query(SPACE.from_index(1), "test", epochs=12) == 2.0


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        TabularBenchmark.from_parquet(tmp_path / "nope.parquet", "nb201")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match="broken.parquet.*not a readable Parquet"):
        TabularBenchmark.from_parquet(broken, "nb201")
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"arch_str": [str(SPACE.from_index(0))], "cifar10_valid_acc": [1.0]}), good)
    good.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(ValueError, match="good.parquet"):
        TabularBenchmark.from_parquet(good, "nb201")


def test_tables_without_accuracy_or_with_bad_rows_are_rejected(tmp_path):
    path = tmp_path / "noacc.parquet"
    pq.write_table(pa.table({"arch_str": [str(SPACE.from_index(0))], "score": [1.0]}), path)
    with pytest.raises(ValueError, match="no accuracy columns"):
        TabularBenchmark.from_parquet(path, "nb201")
    path = tmp_path / "badrow.parquet"
    pq.write_table(pa.table({"arch_str": ["|conv~0|"], "cifar10_valid_acc": [1.0]}), path)
    with pytest.raises(ValueError, match="not a nb201 architecture"):
        TabularBenchmark.from_parquet(path, "nb201")
    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({"arch_str": [str(SPACE.from_index(0))], "cifar10_valid_acc": ["high"]}), path)
    with pytest.raises(ValueError, match="cifar10_valid_acc.*numeric"):
        TabularBenchmark.from_parquet(path, "nb201")


@pytest.mark.parametrize(
    "file, space, rows, first",
    [
        ("nb101_zc_naslib_subset.parquet", "nb101", 500, 92.578125),
        ("nb301_zc_naslib_subset.parquet", "nb301", 725, 93.32119),
        ("nb201_zc_naslib_subset.parquet", "nb201", 724, 86.06),
    ],
)
def test_naslib_tables_load_with_structured_arch_columns(file, space, rows, first):
    table = TabularBenchmark.from_parquet(benchmark_file(file), space, "cifar10")
    assert len(table) == rows
    assert table.query(table.archs[0]) == pytest.approx(first, abs=1e-4)
    assert table.info(table.archs[0])["params"] > 1e5
    assert table.available() == [("valid", None)]
