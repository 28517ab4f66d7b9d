"""Weight-sharing supernets: shared op modules, sub-network extraction, the training knobs,
the Tune trainable, Ray-task scoring and search on a trained supernet."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ray import tune

from raynas.data import load_dataset
from raynas.trainables.standalone import accuracy
from raynas.trainables.supernet import (
    PathSampler,
    SupernetSettings,
    SupernetTrainable,
    evaluate_path,
    load_supernet_state,
    make_supernet,
    path_score,
    recalibrate_bn,
)
from raynas.trainables.settings import RANK_BYS
from raynas.trainables.mixed_net import leaned_weights, mixed_forward, uniform_weights
from raynas.trainables.subnet_search import search_subnets
from raynas.trainables.supernet_net import extract_subnet
from raynas.trainables.supernet_search import (
    evolution_search,
    random_search,
    score_archs,
    score_texts,
    sparse_kendall_tau,
    top_k_overlap,
    truth_binned_kendall_tau,
)
from search_spaces import darts_net, get_space, nb201_net

SIZES = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3}}
STANDALONE_SIZES = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3, "stem_multiplier": 3}}
TINY = {"dataset": "digits", "epochs": 2, "build": SIZES["nb201"], "data_portion": 0.3, "probe_archs": 3}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _supernet(space: str, bn_mode: str = "running", **knobs):
    torch.manual_seed(0)
    settings = SupernetSettings.from_config({"space": space, "build": SIZES[space], "bn_mode": bn_mode, **knobs})
    return make_supernet(settings, load_dataset("synthetic:64")), settings


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_a_sampled_path_gives_logits_and_gradients_only_on_its_ops(space):
    net, _ = _supernet(space)
    arch = get_space(space).sample(0)
    logits = net(torch.randn(5, 3, 8, 8), arch.spec, 0.2)
    assert logits.shape == (5, 4)
    logits.sum().backward()
    on_path = {key for key in net.state_dict() if net.subnet_key(key, arch.spec) is not None}
    for name, param in net.named_parameters():
        if name not in on_path:
            assert param.grad is None, name


def test_supernet_edges_hold_the_standalone_op_modules():
    net, _ = _supernet("nb201")
    cell = net.cells[0]
    for edge in cell.edges:
        assert list(edge) == list(nb201_net.OPS)
        for op, module in edge.items():
            assert type(module) is type(nb201_net.make_op(op, 4))
    darts, _ = _supernet("darts")
    reduction = next(c for c in darts.cells if c.reduction)
    assert type(reduction.edges["0_0"]["skip_connect"]) is darts_net.FactorizedReduce
    assert type(reduction.edges["1_2"]["skip_connect"]) is torch.nn.Identity
    assert type(reduction.edges["1_2"]["sep_conv_3x3"]) is darts_net.SepConv


@pytest.mark.parametrize("space", ["nb201", "darts"])
@pytest.mark.parametrize("knobs", [{}, {"bn_sharing": "shared", "dropout": 0.5}], ids=["per_op", "shared_bn+dropout"])
def test_extracted_subnet_is_the_standalone_network_computing_what_the_supernet_computes(space, knobs):
    net, _ = _supernet(space, **knobs)
    net.train()
    net(torch.randn(16, 3, 8, 8), get_space(space).sample(1).spec)  # move running stats off their init
    net.eval()
    x = torch.randn(7, 3, 8, 8)
    for seed in range(3):
        arch = get_space(space).sample(seed)
        subnet = extract_subnet(net, arch.spec)
        standalone = get_space(space).build(arch, num_classes=4, in_shape=(3, 8, 8), **STANDALONE_SIZES[space])
        standalone.load_state_dict(subnet.state_dict())  # strict: same names, same shapes
        with torch.no_grad():
            assert torch.equal(net(x, arch.spec), subnet(x))
            assert torch.equal(standalone.eval()(x), subnet(x))


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_weight_sharing_bn_gives_the_ops_of_an_edge_one_output_batchnorm(space):
    per_op, _ = _supernet(space)
    shared, _ = _supernet(space, bn_sharing="shared")
    edge = shared.cells[0].edges[0] if space == "nb201" else shared.cells[0].edges["0_0"]
    norms = {op: [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)] for op, module in edge.items()}
    outputs = {id(found[-1]) for found in norms.values() if found}
    assert len(outputs) == 1  # every op with a BatchNorm ends in the same one
    if space == "darts":  # the inner BatchNorm of a separable conv stays its own
        assert norms["sep_conv_3x3"][0] is not norms["sep_conv_5x5"][0]
    assert sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in per_op.parameters())
    assert set(shared.state_dict()) == set(per_op.state_dict())  # same names: checkpoints and extraction agree


def test_dropout_before_the_classifier_acts_in_training_only():
    net, _ = _supernet("nb201", dropout=0.5)
    plain, _ = _supernet("nb201")  # the same weights (seed 0), no dropout
    arch = get_space("nb201").sample(0)
    x = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(net.eval()(x, arch.spec), plain.eval()(x, arch.spec))
        net.train()
        plain.train()
        assert not torch.equal(net(x, arch.spec), plain(x, arch.spec))
        assert torch.equal(plain(x, arch.spec), plain(x, arch.spec))


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_soft_one_shot_forward_averages_every_op_of_every_edge(space):
    net, _ = _supernet(space)
    net.train()
    x = torch.randn(8, 3, 8, 8)
    mixed_forward(net, x, uniform_weights(space)).sum().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name  # no op left out (DARTS: every node takes every input)


def test_soft_warmup_epochs_train_the_soft_model_then_single_paths(digits):
    trainable = SupernetTrainable(config={**TINY, "epochs": 2, "soft_warmup_epochs": 1, "probe_archs": 0, "data_portion": 0.1})
    sampler_state = trainable.sampler.get_state()
    before = {k: v.clone() for k, v in trainable.model.state_dict().items()}
    trainable.train()
    assert trainable.sampler.get_state() == sampler_state  # no path drawn in the soft epoch
    after = trainable.model.state_dict()
    convs = [k for k in before if ".edges." in k and k.endswith(".1.weight")]
    assert convs and all(not torch.equal(before[k], after[k]) for k in convs)  # every conv op of every edge trained
    trainable.train()
    assert trainable.sampler.get_state() != sampler_state


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_soft_alpha_leans_each_edge_toward_the_path_and_keeps_rows_summing_to_one(space):
    arch = get_space(space).sample(3)
    uniform, leaned = uniform_weights(space), leaned_weights(space, arch.spec, 0.1)
    for u, w in zip(uniform, leaned):
        assert torch.allclose(w.sum(1), torch.ones(len(w)))
        n = w.shape[1]
        on_path = (w - u).abs().sum(1) > 0
        assert torch.allclose(w[on_path].max(1).values, torch.full((int(on_path.sum()),), 1 / n + 0.1))
        assert torch.allclose(w[on_path].min(1).values, torch.full((int(on_path.sum()),), 1 / n - 0.1 / (n - 1)))
    edges = 6 if space == "nb201" else 8  # DARTS: the path's 8 of 14 edges, the others stay uniform
    assert int(((leaned[0] - uniform[0]).abs().sum(1) > 0).sum()) == edges
    path = leaned_weights(space, arch.spec, 1 - 1 / len(get_space(space).ops))[0]  # the largest alpha: the path itself
    assert torch.allclose(path[path.max(1).values > 0.5].sum(1), path[path.max(1).values > 0.5].max(1).values)


def test_soft_alpha_draws_a_path_each_warmup_step_and_changes_the_training(digits):
    config = {**TINY, "epochs": 2, "soft_warmup_epochs": 1, "probe_archs": 0, "data_portion": 0.1}
    plain, leaned = SupernetTrainable(config=config), SupernetTrainable(config={**config, "soft_alpha": 0.2})
    state = leaned.sampler.get_state()
    assert plain.train()["train_loss"] != leaned.train()["train_loss"]
    assert leaned.sampler.get_state() != state  # a path per step, drawn from the sampler's generator


def test_inherited_accuracy_equals_the_extracted_subnets_accuracy(digits):
    settings = SupernetSettings.from_config({"build": SIZES["nb201"], "bn_mode": "running"})
    net = make_supernet(settings, digits)
    arch = get_space("nb201").sample(3)
    assert evaluate_path(net, arch.spec, digits, settings) == accuracy(extract_subnet(net, arch.spec), digits, "valid")


def test_rank_by_scores_subnets_by_accuracy_or_negated_loss_on_valid_or_train_and_valid(digits):
    settings = SupernetSettings.from_config({"build": SIZES["nb201"], "bn_mode": "running"})
    net = make_supernet(settings, digits)
    arch = get_space("nb201").sample(3)
    sub = extract_subnet(net, arch.spec).eval()

    def loss(split: str) -> tuple[float, int]:
        with torch.no_grad():
            total = sum(float(torch.nn.functional.cross_entropy(sub(x), y, reduction="sum")) for x, y in digits.batches(split, 256))
        return total, digits.size(split)

    (valid_loss, n_valid), (train_loss, n_train) = loss("valid"), loss("train")
    scores = {rank: path_score(net, arch.spec, digits, dataclasses.replace(settings, rank_by=rank)) for rank in RANK_BYS}
    assert scores["valid_acc"] == evaluate_path(net, arch.spec, digits, settings)
    assert scores["valid_loss"] == pytest.approx(-valid_loss / n_valid, rel=1e-5)
    assert scores["train_valid_loss"] == pytest.approx(-(valid_loss + train_loss) / (n_valid + n_train), rel=1e-5)
    train_acc = accuracy(sub, digits, "train")
    assert scores["train_valid_acc"] == pytest.approx((scores["valid_acc"] * n_valid + train_acc * n_train) / (n_valid + n_train))


def test_subnet_search_ranks_by_rank_by_and_still_reports_valid_accuracy(digits):
    config = {**TINY, "epochs": 1, "subnet_search": "random", "subnet_samples": 4, "rank_by": "train_valid_loss"}
    result = SupernetTrainable(config=config).train()
    assert result["best_arch_score"] < 0 and 0 <= result["best_arch_acc"] <= 100


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_fair_sampling_trains_every_op_of_every_edge_once_per_group(space):
    sampler = PathSampler(get_space(space), "fair", seed=0)
    ops = sorted(get_space(space).ops)
    for _ in range(3):
        group = [next(sampler) for _ in ops]
        if space == "nb201":
            edges = zip(*group)
        else:
            edges = (tuple(path[c][j][0] for path in group) for c in range(2) for j in range(8))
        for per_edge in edges:
            assert sorted(per_edge) == ops
        for path in group:
            assert get_space(space).is_valid(path)


def test_strict_fair_sampling_gives_every_op_of_every_edge_a_gradient_each_step(digits):
    trainable = SupernetTrainable(config={**TINY, "epochs": 1, "sampling": "strict_fair", "probe_archs": 0})
    group = next(trainable.sampler)
    assert len(group) == len(nb201_net.OPS)
    for per_edge in zip(*group):
        assert sorted(per_edge) == sorted(nb201_net.OPS)
    x, y = next(digits.batches("train", 16))
    sum(torch.nn.functional.cross_entropy(trainable.model(x, p), y) for p in group).backward()
    cells = [m for m in trainable.model.modules() if hasattr(m, "edges")]
    for edge in cells[0].edges:
        for op, module in edge.items():
            for param in module.parameters():
                assert param.grad is not None, op  # on a path (zero when a downstream edge is "none")
    assert np.isfinite(trainable.train()["train_loss"])


def test_bn_recalibration_rewrites_running_stats_and_evaluation_restores_them(digits):
    settings = SupernetSettings.from_config({"build": SIZES["nb201"], "bn_recal_batches": 2})
    net = make_supernet(settings, digits)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    arch = get_space("nb201").sample(5)
    evaluate_path(net, arch.spec, digits, settings)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    recalibrate_bn(net, arch.spec, digits, settings)
    stem_bn = net.stem[1]
    assert not torch.equal(stem_bn.running_mean, before["stem.1.running_mean"])
    assert int(stem_bn.num_batches_tracked) == 2
    batch_net = make_supernet(SupernetSettings.from_config({"build": SIZES["nb201"], "bn_mode": "batch"}), digits)
    assert not any(k.endswith("running_mean") for k in batch_net.state_dict())


def test_warmup_then_cosine_learning_rate():
    s = SupernetSettings.from_config({"epochs": 10, "warmup_epochs": 4, "lr": 0.1})
    assert [round(s.lr_at(e), 4) for e in range(4)] == [0.02, 0.04, 0.06, 0.08]
    assert s.lr_at(4) == pytest.approx(0.1) and s.lr_at(9) < 0.01
    plain = SupernetSettings.from_config({"epochs": 4, "lr": 0.1})
    assert plain.lr_at(2) == pytest.approx(0.05)


NB101_TINY = {"space": "nb101", "build": {"stem_channels": 8, "num_stacks": 1, "num_modules_per_stack": 1},
              "data_portion": 0.2, "bn_recal_batches": 1, "batch_size": 32}  # fmt: skip


@pytest.mark.parametrize(
    "knobs",
    [{"sampling": "fair"}, {"soft_warmup_epochs": 1, "soft_alpha": 0.01, "bn_sharing": "shared", "dropout": 0.2},
     {**NB101_TINY, "sampling": "fair", "path_dropout": 0.1, "dropout": 0.2}],  # fmt: skip
    ids=["fair", "soft+alpha+shared_bn+dropout", "nb101-fair+path_dropout+dropout"],
)
def test_restored_supernet_trial_continues_exactly(digits, knobs):
    config = {**TINY, "epochs": 3, **knobs}
    first = SupernetTrainable(config=config)
    first.train()
    checkpoint = first.save()
    expected = first.train()
    second = SupernetTrainable(config=config)
    second.restore(checkpoint)
    got = second.train()
    assert got["epoch"] == 2 and got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)
    assert got["val_acc"] == expected["val_acc"] and got["rank_stability"] == expected["rank_stability"]
    state = second.supernet_state()  # a supernet rebuilt from the scoring state scores as the trained one
    arch = get_space(config.get("space", "nb201")).sample(4)
    assert score_texts(state, [str(arch)], digits) == [path_score(second.model, arch.spec, digits, second.settings)]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"bn_mode": "train"}, "bn_mode.*allowed values are \\['recalibrate', 'running', 'batch'\\]"),
        ({"sampling": "greedy"}, "sampling.*\\['uniform', 'fair', 'strict_fair'\\]"),
        ({"eval_mode": "fast"}, "eval_mode.*\\['full', 'minibatch'\\]"),
        ({"rank_by": "test_acc"}, "rank_by.*\\['valid_acc', 'valid_loss', 'train_valid_acc', 'train_valid_loss'\\]"),
        ({"bn_affine": "yes"}, "bn_affine.*\\[True, False\\]"),
        ({"space": "nago"}, "space.*\\['nb201', 'darts', 'nb101'\\]"),
        ({"path_dropout": 1.0}, "path_dropout must be in \\[0, 1\\)"),
        ({"dropout": 1.0}, "dropout must be in \\[0, 1\\)"),
        ({"bn_sharing": "edge"}, "bn_sharing.*\\['per_op', 'shared'\\]"),
        ({"soft_warmup_epochs": 2}, "soft_warmup_epochs must be an int in \\[0, epochs=2\\)"),
        ({"soft_warmup_epochs": 1, "soft_alpha": 0.9}, "soft_alpha must be a number in \\[0, 0.8\\]"),
        ({"soft_alpha": 0.01}, "soft_alpha=0.01 leans the soft one-shot warm-up.*give soft_warmup_epochs > 0"),
        ({"space": "nb101", "build": {}, "bn_sharing": "shared"}, "built for the spaces \\['nb201', 'darts'\\]"),
        ({"warmup_epochs": 30}, "warmup_epochs must be an int in \\[0, epochs=2\\)"),
        ({"bn_recal_batches": 0}, "bn_recal_batches must be an int >= 1"),
        ({"lr": 0}, "lr must be > 0"),
        ({"subnet_search": "grid"}, "subnet_search.*'none', 'random', 'evolution'"),
        ({"subnet_samples": 0}, "subnet_samples must be an int >= 1"),
        ({"build": {"width": 8}}, "build options \\['width'\\]; allowed: \\['C', 'N'\\]"),
    ],
)
def test_bad_knob_values_are_named_with_the_allowed_values(change, words):
    with pytest.raises(ValueError, match=words):
        SupernetTrainable(config={**TINY, **change})


def test_ranking_metrics():
    assert sparse_kendall_tau([90.001, 90.002, 80.0], [1.0, 2.0, 0.0]) == pytest.approx(np.sqrt(2 / 3))
    assert top_k_overlap([3, 2, 1, 0], [3, 0, 2, 1], 2) == 0.5
    # only the truth is binned (1e-4 of accuracy): 90.001 and 90.004 tie there, scores never tie
    assert truth_binned_kendall_tau([1.0, 2.0, 3.0], [90.001, 90.004, 95.0]) == pytest.approx(np.sqrt(2 / 3))
    assert truth_binned_kendall_tau([1.0, 1.0, 3.0], [90.0, 91.0, 95.0]) == pytest.approx(np.sqrt(2 / 3))
    with pytest.raises(ValueError, match="k must be in \\[1, 4\\]"):
        top_k_overlap([1, 2, 3, 4], [1, 2, 3, 4], 5)


def test_supernet_in_a_tune_run_resumes_and_scores_archs_as_ray_tasks(ray_session, digits, tmp_path):
    tuner = tune.Tuner(
        tune.with_parameters(SupernetTrainable, data=digits),
        param_space=TINY,
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path),
            name="supernet",
            verbose=0,
            stop={"training_iteration": 1},
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        ),
    )
    result = tuner.fit()[0]
    assert result.error is None and result.metrics["epoch"] == 1 and 0 <= result.metrics["val_acc"] <= 100
    resumed = SupernetTrainable(config=TINY)
    resumed.restore(result.checkpoint)
    final = resumed.train()
    assert final["epoch"] == 2 and final["done"] and "rank_stability" in final

    state = load_supernet_state(result.checkpoint)
    archs = get_space("nb201").sample_unique(5, 1)
    scores = score_archs(state, archs, digits, chunk_size=2)
    assert len(scores) == 5 and all(s < 0 for s in scores)  # rank_by=train_valid_loss: negated cross-entropy
    assert scores == score_texts(state, [str(a) for a in archs], digits)
    with pytest.raises(ValueError, match="edge 1<-0 op"):
        score_archs(state, ["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"], digits)

    top = random_search(state, digits, num_samples=8, top_k=3, seed=0)
    assert len(top) == 3 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    evolved = evolution_search(state, digits, num_samples=10, population_size=4, sample_size=2, batch_size=3, top_k=2)
    assert len(evolved) == 2 and evolved[0][1] >= evolved[1][1]


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_subnet_search_finds_the_best_scored_subnet_in_process(digits, method):
    settings = SupernetSettings.from_config({**TINY, "bn_recal_batches": 1})
    torch.manual_seed(0)
    net = make_supernet(settings, digits)
    space = get_space("nb201")

    def score(texts):
        return [evaluate_path(net, space.parse(t).spec, digits, settings) for t in texts]

    top = search_subnets(space, score, method, 24, top_k=24, seed=1)
    assert len(top) == 24 and len({a for a, _ in top}) == 24
    assert [acc for _, acc in top] == sorted((acc for _, acc in top), reverse=True)
    best, acc = top[0]
    assert acc == evaluate_path(net, best.spec, digits, settings)
    if method == "random":
        assert {a for a, _ in top} == set(get_space("nb201").sample_unique(24, 1))


def test_last_supernet_epoch_reports_the_subnet_searchs_best_architecture(digits):
    trainable = SupernetTrainable(config={**TINY, "epochs": 1, "subnet_search": "evolution", "subnet_samples": 6})
    result = trainable.train()
    assert result["done"] and get_space("nb201").parse(result["best_arch"])
    assert 0 <= result["best_arch_acc"] <= 100 and result["search_time_s"] > 0
    assert "best_arch" not in SupernetTrainable(config={**TINY, "epochs": 2}).train()
