"""Forecasting models: shapes for every model x strategy, CI = each channel alone, zero-shot, DLinear formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sigattn.models.forecasting import (
    STRATEGIES,
    DLinear,
    PatchTST,
    RevIN,
    create_forecaster,
    moving_average,
)
from sigattn.models.registry import model_names

SMALL = {
    "dlinear": {},
    "itransformer": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
    "patchtst": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
    "tsmixer": {"d_ff": 16},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _model(name, strategy, n_channels=5, seq_len=48, pred_len=12, **kw):
    torch.manual_seed(0)
    return create_forecaster(
        name,
        seq_len,
        pred_len,
        channel_strategy=strategy,
        n_channels=n_channels,
        n_clusters=3,
        **SMALL[name],
        **kw,
    )


@pytest.mark.parametrize("name", model_names("forecast"))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shapes_every_model_and_strategy(name, strategy):
    m = _model(name, strategy)
    x = torch.randn(3, 5, 48)
    y, aux = m(x, return_aux=True)
    assert y.shape == (3, 5, 12)
    assert ("cluster_loss" in aux) == (strategy == "ccm")
    if strategy == "ccm":
        assert aux["clusters"].prob.shape == (3, 5, 3)
        assert m.assignments(x).shape == (3, 5, 3)
    (y.pow(2).mean() + aux.get("cluster_loss", 0)).backward()


@pytest.mark.parametrize("name", model_names("forecast"))
def test_ci_equals_each_channel_alone(name):
    m = _model(name, "ci").eval()
    x = torch.randn(4, 5, 48)
    with torch.no_grad():
        y = m(x)
        for c in range(5):
            torch.testing.assert_close(m(x[:, c : c + 1])[:, 0], y[:, c], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", model_names("forecast"))
def test_ccm_zero_shot_on_more_channels_and_cd_refuses(name):
    ccm = _model(name, "ccm", n_channels=4).eval()
    with torch.no_grad():
        assert ccm(torch.randn(2, 13, 48)).shape == (2, 13, 12)
    cd = _model(name, "cd", n_channels=4)
    if name == "itransformer":  # attention over channel tokens: CD works on any channel count
        assert cd(torch.randn(2, 13, 48)).shape == (2, 13, 12)
        return
    with pytest.raises(ValueError, match="4 channels"):
        cd(torch.randn(2, 13, 48))


def test_cd_mixes_channels_ci_does_not():
    m = _model("tsmixer", "cd").eval()
    x = torch.randn(1, 5, 48)
    x2 = x.clone()
    x2[:, 4] = torch.randn(1, 48)
    with torch.no_grad():
        assert not torch.allclose(m(x)[:, 0], m(x2)[:, 0])


def test_moving_average_matches_numpy_with_edge_replication():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 30))
    k = 7
    pad = np.concatenate([np.repeat(x[..., :1], 3, -1), x, np.repeat(x[..., -1:], 3, -1)], -1)
    ref = np.apply_along_axis(lambda v: np.convolve(v, np.ones(k) / k, mode="valid"), -1, pad)
    np.testing.assert_allclose(moving_average(torch.from_numpy(x), k).numpy(), ref, rtol=1e-10)


def test_dlinear_ci_is_linear_decomposition_formula():
    m = DLinear(24, 6, kernel_size=5).eval()
    torch.nn.init.normal_(m.seasonal.layer.weight)
    torch.nn.init.normal_(m.trend.layer.weight)
    x = torch.randn(2, 3, 24, dtype=torch.float64)
    m = m.double()
    trend = moving_average(x, 5).numpy()
    ws, bs = m.seasonal.layer.weight.detach().numpy(), m.seasonal.layer.bias.detach().numpy()
    wt, bt = m.trend.layer.weight.detach().numpy(), m.trend.layer.bias.detach().numpy()
    ref = (x.numpy() - trend) @ ws.T + bs + trend @ wt.T + bt
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-10)


def test_ccm_with_one_cluster_equals_ci_with_same_weights():
    ci = DLinear(24, 6, channel_strategy="ci")
    ccm = DLinear(24, 6, channel_strategy="ccm", n_clusters=1)
    with torch.no_grad():
        for a, b in ((ci.seasonal, ccm.seasonal), (ci.trend, ccm.trend)):
            a.layer.weight.normal_()
            b.layer.weight.copy_(a.layer.weight.T[None])
            b.layer.bias.copy_(a.layer.bias[None])
    x = torch.randn(3, 4, 24)
    torch.testing.assert_close(ccm.eval()(x), ci.eval()(x), atol=1e-5, rtol=1e-5)


def test_revin_stats_match_features_and_invert():
    from sigattn.features import instance_norm_stats

    x = torch.randn(3, 4, 20, dtype=torch.float64) * 3 + 2
    rev = RevIN(affine=True)
    z, (mean, std) = rev.double().normalize(x)
    m_ref, s_ref = instance_norm_stats(x.numpy(), axis=-1, eps=1e-5)
    np.testing.assert_allclose(mean.numpy(), m_ref, rtol=1e-12)
    np.testing.assert_allclose(std.numpy(), s_ref, rtol=1e-12)
    torch.testing.assert_close(rev.denormalize(z, (mean, std)), x)


def test_patchtst_patch_count_and_bad_args():
    assert PatchTST(96, 24, d_model=16, n_heads=2, n_layers=1).patch_num == (96 - 16) // 8 + 2
    with pytest.raises(ValueError, match="channel_strategy"):
        DLinear(24, 6, channel_strategy="mixed")
    with pytest.raises(ValueError, match="n_channels"):
        DLinear(24, 6, channel_strategy="cd")
    with pytest.raises(ValueError, match="unknown forecasting model"):
        create_forecaster("informer", 24, 6)
    with pytest.raises(ValueError, match="L=24"):
        DLinear(24, 6)(torch.randn(2, 3, 30))


def test_ccm_model_exports_with_torch_export():
    m = _model("tsmixer", "ccm").eval()
    x = torch.randn(2, 5, 48)
    ep = torch.export.export(m, (x,))
    torch.testing.assert_close(ep.module()(x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("assign_grad", [False, True])
def test_ccm_assign_grad_reaches_the_assigner_from_a_recipe_key(assign_grad):
    # model.ccm_assign_grad (a recipe key through the registry) decides whether the forecasting loss alone
    # trains the channel embedding: without it the embedding gets no gradient from the forecast
    from sigattn.models.registry import create_model

    torch.manual_seed(0)
    m = create_model("forecast", "dlinear", seq_len=32, pred_len=8, channel_strategy="ccm", n_clusters=2,
                     n_channels=5, ccm_assign_grad=assign_grad)  # fmt: skip
    m.train()
    m(torch.randn(4, 5, 32)).pow(2).mean().backward()
    grads = [p.grad for p in m.clustering.embed.parameters()]
    moved = any(g is not None and g.abs().sum() > 0 for g in grads)
    assert moved is assign_grad
    assert m.clustering.refine is False
    assert create_model("forecast", "dlinear", seq_len=32, pred_len=8, channel_strategy="ccm",
                        ccm_refine=True).clustering.refine is True  # fmt: skip
