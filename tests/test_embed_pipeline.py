"""Features -> encoder -> embeddings table: the `raynas embed` command and its Python API."""
from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
import torch

from predictors.embed_pipeline import (
    FeatureSettings,
    build_embeddings,
    embed_architectures,
    merged_features,
    module_features,
)
from predictors.embeddings import ArchEmbeddings
from predictors.jacobian import init_seed, input_basis, jacobian_features
from predictors.set_encoder import SetEncoder
from raynas.cli import _embed_builds, main
from search_spaces import get_space

TINY = {"nb201": {"C": 4, "N": 1}, "nb101": {"stem_channels": 4, "num_stacks": 1, "num_modules_per_stack": 1}}
FEATURES = ["--inits", "2", "--batch-size", "16", "--proj", "8", "--seed", "1"]
SETTINGS = FeatureSettings("digits", num_inits=2, batch_size=16, proj_dim=8, seed=1)
TRAIN = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "hidden": 32, "embed_dim": 16, "head_dim": 8}



@pytest.fixture(scope="module")
def first_run(ray_session, tmp_path_factory):
    """`raynas embed --train-encoder` on 10 tiny NB201 archs: (out path, printed summary)."""
    out = tmp_path_factory.mktemp("embed") / "emb.parquet"
    argv = ["embed", "--space", "nb201", "--dataset", "digits", "--out", str(out), "--num-archs", "10",
            "--train-encoder", "--epochs", "2", "--train-batch", "4", "--embed-dim", "16",
            "--build", json.dumps(TINY["nb201"]), *FEATURES]  # fmt: skip
    return out, _run(argv)


def _run(argv: list[str]) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return printed.getvalue()


def test_cli_embed_writes_a_readable_table_and_a_reloadable_encoder(first_run):
    out, printed = first_run
    table = ArchEmbeddings.from_parquet(out)
    assert table.space.name == "nb201" and len(table) == 10 and table.dim == 16
    assert np.isfinite(table.vectors).all()
    encoder = SetEncoder.load(out.with_name("emb.parquet.encoder"))
    assert len(encoder.loss_history_) == 2 and encoder.feature_meta_["shape"] == [2, 16, 8]
    assert "10 computed, 0 already stored" in printed and "arch/s" in printed and str(out) in printed


def test_rerun_resumes_without_recomputing(first_run):
    out, _ = first_run
    again = out.with_name("again.parquet")
    printed = _run(["embed", "--space", "nb201", "--out", str(again), "--num-archs", "10",
                    "--features", str(out.with_name("emb.parquet.features")),
                    "--encoder", str(out.with_name("emb.parquet.encoder")),
                    "--build", json.dumps(TINY["nb201"]), "--inits", "2"])  # fmt: skip
    assert "0 computed, 10 already stored" in printed and "loaded from" in printed


def test_a_loaded_encoder_gives_identical_embeddings(first_run):
    out, _ = first_run
    again = out.with_name("loaded.parquet")
    _run(["embed", "--space", "nb201", "--out", str(again), "--num-archs", "10",
          "--features", str(out.with_name("emb.parquet.features")), "--encoder", str(out.with_name("emb.parquet.encoder")),
          "--build", json.dumps(TINY["nb201"]), *FEATURES])  # fmt: skip
    first, second = ArchEmbeddings.from_parquet(out), ArchEmbeddings.from_parquet(again)
    assert [a.key for a in first.archs] == [a.key for a in second.archs]
    np.testing.assert_array_equal(first.vectors, second.vectors)


def test_one_encoder_embeds_two_spaces_alike(ray_session, tmp_path):
    out = tmp_path / "both.parquet"
    summary = build_embeddings(
        ["nb201", "nb101"], out, SETTINGS, archs=6, builds=TINY, train=True, train_options=TRAIN, progress=False
    )
    nb201, nb101 = (ArchEmbeddings.from_parquet(out, name) for name in ("nb201", "nb101"))
    assert len(nb201) == len(nb101) == 6 and nb201.dim == nb101.dim == summary.dim == 16
    assert summary.counts == {"nb201": 6, "nb101": 6} and set(summary.spaces) == {"nb201", "nb101"}
    encoder = SetEncoder.load(summary.encoder_path)
    assert encoder.feature_meta_["space"] == ["nb201", "nb101"]
    direct = embed_architectures("nb101", nb101.archs[:2], "digits", encoder, build=TINY["nb101"])
    np.testing.assert_allclose(direct.vectors, nb101.vectors[:2], rtol=1e-4, atol=1e-5)


def test_features_of_other_settings_are_refused(ray_session, tmp_path):
    for seed in (1, 2):
        build_embeddings("nb201", tmp_path / f"s{seed}.parquet", FeatureSettings("digits", 2, 16, 8, seed), archs=3,
                         builds=TINY, train=True, train_options=TRAIN, progress=False)  # fmt: skip
    roots = [tmp_path / f"s{seed}.parquet.features" / "nb201" for seed in (1, 2)]
    with pytest.raises(ValueError, match="not comparable.*inputs_sha1"):
        with merged_features(roots):
            pass
    with pytest.raises(ValueError, match="settings differ from the encoder's.*seed: 1 vs 2"):
        build_embeddings("nb201", tmp_path / "mixed.parquet", FeatureSettings("digits", 2, 16, 8, 2), archs=3,
                         encoder=tmp_path / "s1.parquet.encoder", progress=False)  # fmt: skip


def test_paper_preset_fills_what_is_not_given(ray_session, tmp_path):
    """`--preset paper`: per-matrix SVD features and the 4+4-layer encoder with a linear head,
    while flags given on the command line (here a tiny network and batch) win."""
    out = tmp_path / "paper.parquet"
    _run(["embed", "--preset", "paper", "--dataset", "digits", "--out", str(out), "--num-archs", "6", "--train-encoder",
          "--epochs", "1", "--train-batch", "6", "--build", json.dumps(TINY["nb201"]), *FEATURES])  # fmt: skip
    encoder = SetEncoder.load(tmp_path / "paper.parquet.encoder")
    assert encoder.hparams["layers"] == 4 and encoder.hparams["head"] == "linear" and encoder.hparams["head_dim"] == 256
    assert encoder.feature_meta_["projection"] == "svd" and encoder.feature_meta_["shape"] == [2, 16, 8]
    assert FeatureSettings.from_meta(encoder.feature_meta_).projection == "svd"
    table = ArchEmbeddings.from_parquet(out)
    again = embed_architectures("nb201", table.archs[:2], None, encoder, build=TINY["nb201"])
    np.testing.assert_allclose(again.vectors, table.vectors[:2], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="projection"):
        build_embeddings("nb201", tmp_path / "x.parquet", SETTINGS, archs=2, encoder=encoder, builds=TINY)


def test_build_option_is_shared_or_given_per_space():
    assert _embed_builds('{"C": 8}', ["nb201"]) == {"nb201": {"C": 8}}
    per_space = '{"nb201": {"C": 8}, "nb101": {"stem_channels": 16}}'
    assert _embed_builds(per_space, ["nb201", "nb101"]) == {"nb201": {"C": 8}, "nb101": {"stem_channels": 16}}


def test_module_features_equal_one_initialisation_of_its_architecture():
    space = get_space("nb201")
    arch = space.sample(np.random.default_rng(0))
    inputs = SETTINGS.inputs()
    basis = input_basis(inputs, 8)
    expected = jacobian_features(arch, space, inputs=inputs, num_inits=1, proj=basis, seed=5, build=TINY["nb201"])
    torch.manual_seed(init_seed(5, 0))
    model = space.build(space.canonical(arch), num_classes=10, in_shape=(1, 8, 8), **TINY["nb201"])
    np.testing.assert_allclose(module_features(model, inputs, basis), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--space", "nb999", "--train-encoder"], "unknown search space"),
        (["--dataset", "nope", "--train-encoder", "--num-archs", "2"], "unknown dataset"),
        (["--space", "darts", "--train-encoder"], "too large to enumerate"),
        (["--num-archs", "2"], "encoder directory .* does not exist"),
        (["--build", "[1]", "--train-encoder"], "--build must be a JSON object"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, tmp_path, capsys):
    assert main(["embed", "--out", str(tmp_path / "e.parquet"), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)
