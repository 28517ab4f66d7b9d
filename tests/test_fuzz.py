"""Property-based fuzzing of every parser and decoder a user's input reaches.

The contract (DESIGN.md, "Invalid input raises a ValueError that names the field"): bad input
gives a ``ValueError``, ``KeyError`` or ``FileNotFoundError`` with a message (the CLI: exit
code 2, or argparse's ``SystemExit``), never another exception and never a hang.  Inputs are
random text and random edits of valid values, so the fuzzer spends its budget near the
grammar instead of on strings that fail at the first character.  Each test counts its cases in
``CASES``; ``test_zz_cases_were_run`` prints the totals (visible with ``-s`` or ``-rP``).
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ray import tune

from search_spaces import get_space

ALLOWED = (ValueError, KeyError, FileNotFoundError)
SPACES = ("nb201", "nb101", "darts", "darts-edges", "darts-csnas", "mobilenetv3", "nago")
CASES: collections.Counter[str] = collections.Counter()
#: cases per test: 100 (fixed seed, the CI run) or RAYNAS_FUZZ_EXAMPLES for a longer random hunt
EXAMPLES = int(os.environ.get("RAYNAS_FUZZ_EXAMPLES", "100"))
#: generous per-case deadline: the machine runs other benchmark jobs on its 2 cores
FUZZ = settings(
    max_examples=EXAMPLES, deadline=3000, derandomize=EXAMPLES <= 100, suppress_health_check=[HealthCheck.too_slow]
)


def clean(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; an allowed exception must carry a message, any other one fails the test."""
    CASES[label] += 1
    try:
        return fn(*args, **kwargs)
    except ALLOWED as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        assert str(message).strip(), f"{type(err).__name__} without a message from {label}"
        return None


# ---------------------------------------------------------------------- strategies
VALID_TEXT = {name: [get_space(name).sample(seed).text for seed in range(4)] for name in SPACES}
GRAMMAR = "|~+()[],=:;/'\" 0123456789-._abcdeghiklmnopqrstuvwxyz"


@st.composite
def edited(draw: st.DrawFn, base: str) -> str:
    """``base`` with up to four random deletions, insertions or replacements."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 6)))
        insert = draw(st.text(alphabet=GRAMMAR, max_size=6) | st.sampled_from(["-1", "99", "1e9", "nan", "", "~", "|"]))
        text = text[:i] + insert + text[j:]
    return text


def arch_texts(name: str) -> st.SearchStrategy[str]:
    valid = VALID_TEXT[name]
    return st.one_of(
        st.text(max_size=60),
        st.text(alphabet=GRAMMAR, max_size=120),
        st.sampled_from(valid).flatmap(edited),
        st.sampled_from(valid),
    )


WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-3, 9), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.builds(np.int64, st.integers(-10, 10)),
    st.builds(np.float32, st.floats(-10, 10)),
)


@st.composite
def configs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A valid config of ``name`` with keys dropped, values replaced by weird ones or by the
    valid values of other keys, or a random dict outright."""
    space = get_space(name)
    if draw(st.integers(0, 9)) == 0:
        return draw(st.dictionaries(st.text(max_size=8), WEIRD, max_size=6))
    config = space.encode(space.sample(draw(st.integers(0, 2**16))))
    keys = sorted(config)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4)):
        action = draw(st.integers(0, 2))
        if action == 0:
            config.pop(key, None)
        elif action == 1:
            config[key] = draw(WEIRD)
        else:
            config[key] = config.get(draw(st.sampled_from(keys)), 0)
    return config


# ---------------------------------------------------------------------- arch strings, configs
@pytest.mark.parametrize("name", SPACES)
@FUZZ
@given(data=st.data())
def test_parse_arch_strings(name: str, data: st.DataObject) -> None:
    space = get_space(name)
    text = data.draw(arch_texts(name))
    arch = clean(f"parse:{name}", space.parse, text)
    if arch is not None:  # accepted text round-trips
        assert space.parse(arch.text) == arch


@pytest.mark.parametrize("name", SPACES)
@settings(FUZZ, max_examples=max(20, EXAMPLES // 5))
@given(value=WEIRD)
def test_parse_rejects_non_strings(name: str, value: Any) -> None:
    clean(f"parse-type:{name}", get_space(name).parse, value)


@pytest.mark.parametrize("name", SPACES)
@FUZZ
@given(data=st.data())
def test_decode_configs(name: str, data: st.DataObject) -> None:
    space = get_space(name)
    config = data.draw(configs(name))
    arch = clean(f"decode:{name}", space.decode, config)
    if arch is not None:
        assert space.decode(space.encode(arch)) == arch


# ---------------------------------------------------------------------- NB101 matrices
MATRIX_ENTRY = st.one_of(st.sampled_from([0, 1]), st.integers(-2, 3), st.floats(allow_nan=True), st.text(max_size=2), st.none())
NB101_OPS = ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output"]


@FUZZ
@given(
    n=st.integers(0, 9),
    m=st.integers(0, 9),
    entries=st.lists(MATRIX_ENTRY, min_size=81, max_size=81),
    ops=st.lists(st.sampled_from(NB101_OPS) | st.text(max_size=6) | st.integers(), max_size=9),
    as_array=st.booleans(),
)
def test_nb101_matrices(n: int, m: int, entries: list[Any], ops: list[Any], as_array: bool) -> None:
    space = get_space("nb101")
    matrix: Any = [entries[i * 9 : i * 9 + m] for i in range(n)]
    if as_array:
        try:
            matrix = np.array(matrix)
        except ValueError:  # numpy refuses ragged input: that is the caller's own error
            return
    clean("nb101:from_matrix", space.from_matrix, matrix, ops)


@FUZZ
@given(upper=st.lists(st.booleans(), min_size=21, max_size=21), middle=st.lists(st.sampled_from(NB101_OPS[1:4]), min_size=5, max_size=5))
def test_nb101_upper_triangular_binary_matrices(upper: list[bool], middle: list[str]) -> None:
    """Well-formed 7x7 matrices: any of them is accepted or rejected as not a valid cell."""
    matrix = np.zeros((7, 7), dtype=int)
    matrix[np.triu_indices(7, 1)] = upper
    clean("nb101:binary", get_space("nb101").from_matrix, matrix, ["input", *middle, "output"])


# ---------------------------------------------------------------------- Parquet tables
def _valid_table() -> pa.Table:
    space = get_space("nb201")
    archs = [space.from_index(i).text for i in range(6)]
    return pa.table(
        {
            "arch_str": archs,
            "cifar10_valid_acc": [80.0 + i for i in range(6)],
            "cifar10_test_acc": [79.0 + i for i in range(6)],
            "cifar10_valid_acc_12ep": [60.0 + i for i in range(6)],
            "params": [1000 * (i + 1) for i in range(6)],
        }
    )


def _arrow(values: list[Any]) -> pa.Array:
    """Arrow column of ``values``; mixed types that Arrow refuses become text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values])


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


VALID_BYTES = _parquet_bytes(_valid_table())
COLUMN_VALUES = st.one_of(
    st.lists(st.text(max_size=8), min_size=6, max_size=6),
    st.lists(st.integers(-5, 200), min_size=6, max_size=6),
    st.lists(st.floats(allow_nan=True), min_size=6, max_size=6),
    st.lists(st.none() | st.floats(0, 100), min_size=6, max_size=6),
    st.lists(st.booleans(), min_size=6, max_size=6),
    st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=2), min_size=6, max_size=6),
)


@st.composite
def broken_tables(draw: st.DrawFn) -> bytes:
    """A valid table with columns dropped, retyped or added, or its bytes cut or corrupted."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        table = _valid_table()
        for column in draw(st.lists(st.sampled_from(table.column_names), max_size=3, unique=True)):
            i = table.column_names.index(column)
            table = table.remove_column(i) if draw(st.booleans()) else table.set_column(i, column, _arrow(draw(COLUMN_VALUES)))
        extra = ["dataset", "val_accuracy", "cifar10_valid_acc_200ep", "cifar10_test_acc_0ep", "flops", "arch", ""]
        for name in draw(st.lists(st.sampled_from(extra) | st.text(max_size=8), max_size=3, unique=True)):
            if name not in table.column_names:
                table = table.append_column(name, _arrow(draw(COLUMN_VALUES)))
        return _parquet_bytes(table)
    if kind == 1:
        return VALID_BYTES[: draw(st.integers(0, len(VALID_BYTES) - 1))]
    data = bytearray(VALID_BYTES)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.fixture(scope="module")
def scratch() -> Path:
    with tempfile.TemporaryDirectory(prefix="raynas-fuzz-") as tmp:
        yield Path(tmp)


@FUZZ
@given(data=broken_tables(), dataset=st.sampled_from(["cifar10", "cifar100", ""]))
def test_benchmark_tables(scratch: Path, data: bytes, dataset: str) -> None:
    from raynas.benchmarks import TabularBenchmark

    path = scratch / "bench.parquet"
    path.write_bytes(data)
    table = clean("parquet:TabularBenchmark", TabularBenchmark.from_parquet, path, "nb201", dataset)
    if table is not None:  # a table that loads answers every query it lists
        for split, epochs in table.available():
            for arch in table:
                assert isinstance(table.query(arch, split, epochs), float)


@st.composite
def broken_embedding_tables(draw: st.DrawFn) -> bytes:
    space = get_space("nb201")
    good = pa.table(
        {
            "space": ["nb201"] * 3,
            "arch": [space.from_index(i).text for i in range(3)],
            "key": ["a", "b", "c"],
            "embedding": pa.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], type=pa.list_(pa.float32(), 2)),
        }
    )
    if draw(st.booleans()):
        raw = _parquet_bytes(good)
        return raw[: draw(st.integers(0, len(raw) - 1))]
    for column in draw(st.lists(st.sampled_from(good.column_names), min_size=1, max_size=2, unique=True)):
        i = good.column_names.index(column)
        values = draw(st.lists(st.none() | st.text(max_size=5) | st.lists(st.floats(allow_nan=True), max_size=3), min_size=3, max_size=3))
        good = good.remove_column(i) if draw(st.booleans()) else good.set_column(i, column, _arrow(values))
    return _parquet_bytes(good)


@FUZZ
@given(data=broken_embedding_tables())
def test_embedding_tables(scratch: Path, data: bytes) -> None:
    from predictors.embeddings import ArchEmbeddings

    path = scratch / "emb.parquet"
    path.write_bytes(data)
    clean("parquet:ArchEmbeddings", ArchEmbeddings.from_parquet, path, "nb201")


def test_missing_and_directory_paths_are_clear(scratch: Path) -> None:
    from raynas.benchmarks import TabularBenchmark

    with pytest.raises(FileNotFoundError, match="does not exist"):
        TabularBenchmark.from_parquet(scratch / "absent.parquet", "nb201")
    with pytest.raises(ValueError, match="is a directory"):
        TabularBenchmark.from_parquet(scratch, "nb201")


# ---------------------------------------------------------------------- the CLI
def _run_cli(label: str, argv: list[str]) -> None:
    """``main(argv)`` returns 2 or argparse exits; anything else escaping is a bug."""
    from raynas.cli import main

    CASES[label] += 1
    try:
        code = main(argv)
    except SystemExit as exit_:
        assert exit_.code == 2, f"argparse exited with {exit_.code} for {argv}"
        return
    assert code == 2, f"{argv} was accepted (exit {code}) although it is invalid"


FLAG_VALUE = st.one_of(st.text(max_size=10), st.sampled_from(["-1", "0", "1", "3,32", "a,b,c", "0,8,8", "x=1", "=", "nan"]))


@FUZZ
@given(
    space=st.sampled_from([*SPACES, "nope", ""]),
    arch=st.one_of(*(arch_texts(name) for name in SPACES)),
    in_shape=FLAG_VALUE,
    extra=st.lists(st.sampled_from(["--seed", "--num-classes", "--bogus", "-x"]) | FLAG_VALUE, max_size=3),
)
def test_cli_inspect(space: str, arch: str, in_shape: str, extra: list[str]) -> None:
    """Invalid arch strings and shapes fail before any network is built."""
    from raynas.cli import _in_shape

    try:
        _in_shape(in_shape)
        in_shape = "0,0,0"  # keep every case invalid: a valid one would build and run a network
    except ValueError:
        pass
    _run_cli("cli:inspect", ["inspect", "--space", space, "--arch", arch, f"--in-shape={in_shape}", *extra])


class WouldStartRay(Exception):
    """Raised where the search would hand over to Tune: validation passed."""


class _FakeTune:
    """What replaces parts of ``ray.tune`` while a fuzzed search runs: Tune's config classes are
    the real ones, ``with_parameters`` puts nothing in an object store, the Tuner never starts."""

    @staticmethod
    def with_parameters(trainable: Any, **_: Any) -> Any:
        return trainable

    class Tuner:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise WouldStartRay()

        @staticmethod
        def restore(*args: Any, **kwargs: Any) -> None:
            raise WouldStartRay()


SEARCH_FLAGS = {
    "--space": st.sampled_from([*SPACES, "nope"]),
    "--searcher": st.sampled_from(["random", "rea", "tpe", "nevergrad", "nope", "predictor-rea"]),
    "--trainable": st.sampled_from(["standalone", "benchmark", "selfsup", "nope"]),
    "--metric": st.sampled_from(["val_acc", "ssl_loss", "knn_acc", "params", ""]),
    "--mode": st.sampled_from(["max", "min", "up"]),
    "--objectives": st.sampled_from(["val_acc:max,params:min", "val_acc:max", "a:b", ":max,", "val_acc"]) | st.text(max_size=12),
    "--num-samples": st.sampled_from(["-1", "0", "2", "x", "1.5"]),
    "--max-concurrent": st.sampled_from(["-1", "0", "2", "x"]),
    "--epochs": st.sampled_from(["-1", "0", "1", "x"]),
    "--benchmark": st.sampled_from(["/nonexistent/t.parquet", ".", ""]),
    "--set": st.sampled_from(["lr=0.1", "=", "x", 'build={"C": 8}', "k="]) | st.text(max_size=8),
    "--searcher-opt": st.sampled_from(["population_size=8", "population_size=0", "population_size=x", "bogus=1",
                                       "num_initial=-1", "gamma=2", "=", "x"]) | st.text(max_size=8),  # fmt: skip
}


@FUZZ
@given(flags=st.lists(st.sampled_from(sorted(SEARCH_FLAGS)), max_size=6), searcher=st.booleans(), data=st.data())
def test_cli_search(flags: list[str], searcher: bool, data: st.DataObject) -> None:
    """Random flag combinations: each ends in exit 2, argparse's exit, or at the point where
    Tune would start (Ray and the Tuner are replaced; the dataset is 8 synthetic images)."""
    import raynas.experiment as experiment

    argv = ["search", "--dataset", "synthetic:8", "--storage", tempfile.gettempdir()]
    if searcher:  # searcher options are the flags that reach the most code: draw them often
        flags = [*flags, "--searcher", "--searcher-opt"]
    for flag in flags:
        argv += [flag, data.draw(SEARCH_FLAGS[flag], label=flag)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "ray_session", lambda *args, **kwargs: contextlib.nullcontext())
        mp.setattr(tune, "Tuner", _FakeTune.Tuner)  # experiment.py imports Tune where it starts it
        mp.setattr(tune, "with_parameters", _FakeTune.with_parameters)
        try:
            _run_cli("cli:search", argv)
        except WouldStartRay:
            CASES["cli:search reached Tune"] += 1


# ---------------------------------------------------------------------- totals
def test_zz_cases_were_run() -> None:
    """Runs last in this file: prints the case counts and checks the fuzzers really ran."""
    print("\nfuzz cases run:")
    for label, count in sorted(CASES.items()):
        print(f"  {label:32s} {count}")
    print(f"  {'total':32s} {sum(CASES.values())}")
    if len(CASES) > 1:  # when run as a whole file
        assert sum(CASES.values()) >= 10 * EXAMPLES
