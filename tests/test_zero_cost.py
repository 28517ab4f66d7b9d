"""Zero-cost proxies: NASLib's definitions, on any nn.Module, behind the predictor interface."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from conftest import benchmark_file
from predictors.zero_cost import (
    LOSS_PROXIES,
    PROXIES,
    ZeroCostPredictor,
    proxy_batch,
    score,
    scores,
)
from search_spaces import get_space

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
TINY = {"C": 4, "N": 1}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return proxy_batch("digits", 16)


def tiny_nb201(in_shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0) -> nn.Module:
    space = get_space("nb201")
    torch.manual_seed(seed)
    return space.build(space.parse(ARCH), num_classes=10, in_shape=in_shape, **TINY)


def user_net(width: int = 64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(256, width), nn.ReLU(inplace=True), nn.Linear(width, 10),
    )  # fmt: skip


@pytest.mark.parametrize("proxy", PROXIES)
def test_every_proxy_is_finite_on_a_tiny_nb201_net(proxy, batch):
    assert math.isfinite(score(tiny_nb201(), *batch, proxy))


@pytest.mark.parametrize("proxy", PROXIES)
def test_every_proxy_is_finite_on_a_user_sequential(proxy, batch):
    assert math.isfinite(score(user_net(), *batch, proxy))


def test_params_proxy_counts_every_parameter(batch):
    net = tiny_nb201()
    assert score(net, *batch, "params") == sum(p.numel() for p in net.parameters())


def test_flops_proxy_is_the_traced_count(batch):
    from raynas.trainables.standalone import count_flops

    assert score(tiny_nb201(), *batch, "flops") == count_flops(tiny_nb201(), (1, 8, 8))


def test_unknown_proxy_raises_naming_the_allowed_ones(batch):
    with pytest.raises(ValueError, match="allowed.*synflow.*nwot"):
        score(user_net(), *batch, "zen")
    with pytest.raises(ValueError, match="allowed"):
        ZeroCostPredictor("zen")


def test_nwot_is_an_alias_of_naswot(batch):
    assert score(user_net(), *batch, "nwot") == score(user_net(), *batch, "naswot")


def test_naswot_rewards_more_distinct_activation_patterns(batch):
    """4 hidden units give 16 images at most 16 patterns, 256 give each its own: more room."""
    assert score(user_net(width=256), *batch, "naswot") > score(user_net(width=4), *batch, "naswot")


def test_naswot_is_minus_inf_when_two_images_share_every_pattern(batch):
    x, y = batch
    twin = torch.cat([x[:1], x[:-1]])
    assert score(user_net(), twin, y, "naswot") == -math.inf


def test_jacov_is_at_most_minus_the_batch_size(batch):
    """-sum(log v + 1/v) over B correlation eigenvalues peaks at -B (all v = 1)."""
    assert score(tiny_nb201(), *batch, "jacov") <= -len(batch[0])


def test_jacov_is_minus_inf_when_the_output_ignores_the_input(batch):
    space = get_space("nb201")
    cut = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # output unreachable
    dead = space.build(cut, in_shape=(1, 8, 8), **TINY)
    assert score(dead, *batch, "jacov") == -math.inf


def test_synflow_ignores_the_data_batch(batch):
    x, y = batch
    other = torch.randn_like(x) * 5
    assert score(tiny_nb201(), x, y, "synflow") == score(tiny_nb201(), other, y, "synflow")


def test_proxies_are_deterministic_for_a_seed(batch):
    first = scores(tiny_nb201(seed=3), *batch, PROXIES)
    assert scores(tiny_nb201(seed=3), *batch, PROXIES) == first
    assert scores(tiny_nb201(seed=4), *batch, ["naswot"])["naswot"] != first["naswot"]


def test_loss_proxies_share_one_pass_and_match_single_scores(batch):
    together = scores(user_net(), *batch, LOSS_PROXIES)
    assert together == pytest.approx({p: score(user_net(), *batch, p) for p in LOSS_PROXIES})


def test_scoring_leaves_the_model_untouched(batch):
    net = tiny_nb201().eval()
    before = copy.deepcopy(net.state_dict())
    scores(net, *batch, PROXIES)
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_a_batch_with_nan_is_rejected(batch):
    x, y = batch
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        score(user_net(), bad, y, "synflow")


def test_loss_proxies_need_labels(batch):
    with pytest.raises(ValueError, match="batch_y"):
        score(user_net(), batch[0], None, "snip")
    assert math.isfinite(score(user_net(), batch[0], None, "naswot"))


def test_proxy_batch_resizes_greyscale_to_colour():
    x, y = proxy_batch("digits", 8, (3, 32, 32))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,)
    assert torch.equal(x[:, 0], x[:, 2])


def test_predictor_fit_is_a_noop_and_predict_gives_scores_and_zero_std():
    space = get_space("nb201")
    archs = [space.parse(ARCH), space.sample(1), space.sample(2)]
    predictor = ZeroCostPredictor("nwot", "nb201", batch_size=16, build=TINY)
    assert predictor.fit(archs, [1.0, 2.0, 3.0]) is predictor
    mean, std = predictor.predict(archs)
    assert mean.shape == std.shape == (3,) and not std.any()
    again, _ = ZeroCostPredictor("naswot", space, batch_size=16, build=TINY).predict([str(a) for a in archs])
    np.testing.assert_array_equal(mean, again)


def test_predictor_takes_modules_and_factories_and_resizes_the_batch():
    predictor = ZeroCostPredictor("params", batch_size=4, in_shape=(3, 16, 16))
    assert predictor.batch()[0].shape == (4, 3, 16, 16)
    mean, _ = predictor.predict([user_net(), lambda: user_net(width=8)])
    assert mean.tolist() == [sum(p.numel() for p in user_net(w).parameters()) for w in (64, 8)]


def test_predictor_needs_a_space_for_archs():
    with pytest.raises(ValueError, match="space"):
        ZeroCostPredictor("params", batch_size=4).predict([ARCH])


def test_synflow_and_params_agree_with_naslib_on_nb201():
    """Full-size NB201 (C=16, N=5): params equal NASLib's, synflow ranks like NASLib's."""
    import pandas as pd

    table = pd.read_parquet(benchmark_file("nb201_zc_naslib_subset.parquet")).sample(8, random_state=0)
    archs = table["arch_str"].tolist()
    ours, _ = ZeroCostPredictor("synflow", "nb201", batch_size=2, in_shape=(3, 32, 32)).predict(archs)
    assert spearmanr(ours, table["synflow"]).statistic > 0.9
    assert np.abs(ours - table["synflow"]).max() < 2.0  # both log synflow
    params, _ = ZeroCostPredictor("params", "nb201", batch_size=2, in_shape=(3, 32, 32)).predict(archs)
    np.testing.assert_allclose(params / 1e6, table["params"], atol=1e-6)
