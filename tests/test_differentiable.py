"""Differentiable one-shot search: the mixed-op relaxation of the supernets, DARTS / GDAS /
DrNAS architecture weights, the derived cell, the second-order gradient, the Tune trainable
and its CLI path to ``raynas train``."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from raynas.cli import main as cli_main
from raynas.trainables.differentiable import ArchWeights, DifferentiableTrainable
from raynas.trainables.mixed_net import DARTS_EDGES, MixedOpNetwork, derive, skip_count
from search_spaces import get_space
from search_spaces.vocabulary import DARTS_OPS, NB201_OPS
from tests.conftest import benchmark_file

SIZES = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3}}
TINY = {"dataset": "digits", "epochs": 2, "build": SIZES["nb201"], "data_portion": 0.2, "batch_size": 64}


def _one_hot(space: str, arch) -> list[torch.Tensor]:
    """Edge weights selecting exactly ``arch`` (DARTS: zero rows for the inputs a node does not take)."""
    if space == "nb201":
        return [F.one_hot(torch.tensor([NB201_OPS.index(op) for op in arch.spec]), len(NB201_OPS)).float()]
    weights = []
    for cell in arch.spec:
        w = torch.zeros(len(DARTS_EDGES), len(DARTS_OPS))
        for j, (op, i) in enumerate(cell):
            w[DARTS_EDGES.index((j // 2, i)), DARTS_OPS.index(op)] = 1.0
        weights.append(w)
    return weights


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_one_hot_edge_weights_compute_exactly_the_supernet_path(space):
    torch.manual_seed(0)
    net = MixedOpNetwork(space, 10, (1, 8, 8), SIZES[space], affine=True).eval()
    arch = get_space(space).sample(3)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net(x, _one_hot(space, arch)), net.supernet(x, arch.spec), atol=1e-5)


def test_gdas_runs_one_op_per_edge_and_its_straight_through_gradient_reaches_alpha():
    torch.manual_seed(0)
    alpha = ArchWeights("nb201", "gdas")
    weights, active = alpha.sample(tau=1.0)
    assert torch.allclose(weights[0].sum(-1), torch.ones(6)) and set(weights[0].detach().flatten().tolist()) == {0.0, 1.0}
    assert torch.equal(weights[0].argmax(-1), active[0])
    net = MixedOpNetwork("nb201", 10, (1, 8, 8), SIZES["nb201"], affine=False)
    F.cross_entropy(net(torch.randn(4, 1, 8, 8), weights, active), torch.arange(4)).backward()
    assert alpha.alphas[0].grad is not None and alpha.alphas[0].grad.abs().sum() > 0


def test_drnas_weights_are_dirichlet_draws_and_the_kl_regulariser_vanishes_at_the_uniform_prior():
    alpha = ArchWeights("darts", "drnas")
    weights, active = alpha.sample(tau=1.0)
    assert active is None and all(torch.allclose(w.sum(-1), torch.ones(len(DARTS_EDGES))) for w in weights)
    with torch.no_grad():
        for a in alpha.alphas:
            a.zero_()  # elu(0) + 1 = 1: Dirichlet(1), the anchor itself
    assert float(alpha.regulariser(1.0).detach()) == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():
        alpha.alphas[0][0, 2] = 3.0
    assert float(alpha.regulariser(1.0).detach()) > 0 and float(ArchWeights("darts", "darts").regulariser(1.0)) == 0


def test_derived_cells_take_the_likeliest_op_and_each_darts_nodes_two_strongest_inputs():
    nb201 = get_space("nb201")
    probs = torch.full((6, 5), 0.1)
    probs[:, NB201_OPS.index("skip_connect")] = 0.5
    probs[3, NB201_OPS.index("nor_conv_3x3")] = 0.9
    arch = derive(nb201, [probs])
    assert str(arch) == "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|skip_connect~2|"
    assert skip_count(arch) == 5

    darts = get_space("darts")
    normal = torch.full((14, 7), 0.1)
    for row, (k, i) in enumerate(DARTS_EDGES):
        normal[row, DARTS_OPS.index("sep_conv_3x3")] = 0.2 + 0.1 * i  # later inputs stronger
    normal[DARTS_EDGES.index((3, 0)), DARTS_OPS.index("skip_connect")] = 0.95
    cell = derive(darts, [normal, normal.clone()]).spec[0]
    assert cell[:6] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
                        ("sep_conv_3x3", 2), ("sep_conv_3x3", 3))  # fmt: skip
    assert cell[6:] == (("skip_connect", 0), ("sep_conv_3x3", 4))
    assert skip_count(darts.make((cell, cell))) == 1


def test_second_order_gradient_matches_the_exact_gradient_through_the_virtual_step():
    t = DifferentiableTrainable(config={**TINY, "order": 2, "weight_decay": 3e-4, "bn_affine": True})
    for module in list(t.model.modules()):  # smooth activations: central differences across ReLU kinks do not converge
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(module, name, torch.nn.Tanh())
    (x, y), (xv, yv) = t.data.sample(16, "train", 0), t.data.sample(16, "valid", 1)
    t.model.train()
    names, params = zip(*t.model.named_parameters())
    xi, wd = t.optimizer.param_groups[0]["lr"], t.settings.weight_decay
    # exact: differentiate L_val(w - xi * (dL_train/dw + wd * w), alpha) through the gradient
    weights = t.alpha.probs()
    train_grads = torch.autograd.grad(F.cross_entropy(t.model(x, weights), y), params, create_graph=True)
    virtual = {n: p - xi * (g + wd * p) for n, p, g in zip(names, params, train_grads)}
    exact = torch.autograd.grad(F.cross_entropy(functional_call(t.model, virtual, (xv, weights)), yv), list(t.alpha.parameters()))
    got = t._unrolled_grads(x, y, xv, yv)
    first_order = torch.autograd.grad(F.cross_entropy(t.model(xv, t.alpha.probs()), yv), list(t.alpha.parameters()))
    scale = float(exact[0].abs().max())
    assert torch.allclose(got[0], exact[0], rtol=0.05, atol=0.01 * scale)
    assert not torch.allclose(first_order[0], exact[0], rtol=0.05, atol=0.01 * scale)  # the correction matters


def test_restored_trial_continues_exactly_and_reports_the_derived_cell():
    config = {**TINY, "method": "gdas", "epochs": 3}
    first = DifferentiableTrainable(config=config)
    r1 = first.train()
    assert get_space("nb201").parse(r1["arch"]) and r1["skip_count"] == skip_count(get_space("nb201").parse(r1["arch"]))
    assert r1["tau"] == 10.0 and 0 <= r1["val_acc"] <= 100 and not r1["done"]
    checkpoint = first.save()
    expected = first.train()
    second = DifferentiableTrainable(config=config)
    second.restore(checkpoint)
    got = second.train()
    assert got["epoch"] == 2 and got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)
    assert got["arch"] == expected["arch"] and got["val_acc"] == expected["val_acc"]


def test_skip_stop_ends_the_search_when_the_derived_cell_collapses_and_the_table_scores_it():
    table = benchmark_file("nb201_all.parquet")
    t = DifferentiableTrainable(config={**TINY, "epochs": 5, "skip_stop": 2, "arch_lr": 1e-8, "benchmark": str(table)})
    with torch.no_grad():
        t.alpha.alphas[0][:, NB201_OPS.index("skip_connect")] = 5.0  # every edge prefers skip
    result = t.train()
    assert result["done"] and result["stopped_early"] and result["epoch"] == 1 and result["skip_count"] == 6
    skip_cell = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    assert result["arch"] == skip_cell
    assert result["table_acc"] == pytest.approx(t.table.query(get_space("nb201").parse(skip_cell), "test"))


def test_arch_warmup_trains_only_the_network_weights_in_its_epochs():
    t = DifferentiableTrainable(config={**TINY, "arch_warmup": 1, "data_portion": 0.1})
    before = [a.detach().clone() for a in t.alpha.alphas]
    t.train()
    assert all(torch.equal(a, b) for a, b in zip(t.alpha.alphas, before))
    t.train()
    assert not all(torch.equal(a, b) for a, b in zip(t.alpha.alphas, before))


@pytest.mark.parametrize(
    "change, words",
    [
        ({"method": "enas"}, r"method.*\['darts', 'gdas', 'drnas'\]"),
        ({"method": "gdas", "order": 2}, "order=2 .* needs method='darts'"),
        ({"order": 3}, r"order.*\[1, 2\]"),
        ({"tau_min": 0}, "0 < tau_min <= tau_max"),
        ({"skip_stop": -1}, "skip_stop must be an int >= 0"),
        ({"arch_warmup": 2}, r"arch_warmup must be an int in \[0, epochs=2\)"),
        ({"space": "nb101"}, r"space.*\['nb201', 'darts'\]"),
        ({"benchmark": "/no/such/table.parquet"}, "is not a file"),
        ({"cutout": 16}, "cutout does not apply to a differentiable search"),
    ],
)
def test_bad_settings_are_named_with_what_is_allowed(change, words):
    with pytest.raises(ValueError, match=words):
        DifferentiableTrainable(config={**TINY, **change})


def test_cli_runs_one_search_per_seed_and_raynas_train_picks_the_derived_cells(ray_session, tmp_path, capsys):
    argv = ["search", "--storage", str(tmp_path), "--name", "gdas", "--max-concurrent", "2", "--trainable",
            "differentiable", "--space", "nb201", "--dataset", "synthetic:64", "--num-samples", "2", "--epochs", "1",
            "--seed", "5", "--set", "method=gdas", "--set", 'build={"C": 4, "N": 1}']  # fmt: skip
    assert cli_main(argv) == 0
    rows = pq.read_table(tmp_path / "gdas" / "trials.parquet").to_pylist()
    assert len(rows) == 2 and all(r["status"] == "TERMINATED" for r in rows)
    assert sorted(json.loads(r["config"])["seed"] for r in rows) == [5, 6]
    archs = {str(get_space("nb201").parse(r["arch"])) for r in rows}
    assert all(r["skip_count"] == skip_count(get_space("nb201").parse(r["arch"])) for r in rows)
    assert (tmp_path / "gdas" / "report.html").is_file()
    capsys.readouterr()
    assert cli_main(["train", "--from", str(tmp_path / "gdas"), "--top-k", "2", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert all(a in printed for a in archs)


def test_darts_space_search_step_runs_on_digits():
    result = DifferentiableTrainable(config={**TINY, "space": "darts", "build": SIZES["darts"], "epochs": 1,
                                             "data_portion": 0.1, "method": "drnas"}).train()  # fmt: skip
    arch = get_space("darts").parse(result["arch"])
    assert result["done"] and result["skip_count"] == skip_count(arch) and result["alpha_entropy"] > 1.9


def test_search_benchmark_flag_reaches_the_trials_as_their_table(tmp_path):
    from raynas.experiment import SearchSettings

    table = tmp_path / "table.parquet"
    table.write_bytes(b"")
    constants = SearchSettings(trainable="differentiable", benchmark=str(table)).trial_constants("nb201", "digits")
    assert constants["benchmark"] == str(table.resolve()) and constants["epochs"] == SearchSettings.epochs
    assert "benchmark" not in SearchSettings(trainable="standalone", benchmark=str(table)).trial_constants("nb201", "digits")
