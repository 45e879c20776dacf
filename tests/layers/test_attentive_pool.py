import pytest
import torch
from _layer_checks import assert_batch_equals_items, assert_grads_reach_all, n_params
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers import AttentiveStatsPool


def reference_asp(pool: AttentiveStatsPool, h: torch.Tensor) -> torch.Tensor:
    """Hand formula in float64 on one unpadded item (C, T), eval-mode BatchNorm, no global context."""
    h = h.double()
    conv = pool.tdnn[0]
    a = conv.weight[:, :, 0].double() @ h + conv.bias.double()[:, None]
    e = pool.conv.weight[:, :, 0].double() @ torch.tanh(a) + pool.conv.bias.double()[:, None]
    alpha = torch.exp(e - e.max(-1, keepdim=True).values)
    alpha = alpha / alpha.sum(-1, keepdim=True)
    mu = (alpha * h).sum(-1)
    sigma = ((alpha * h * h).sum(-1) - mu**2).clamp_min(1e-12).sqrt()
    return torch.cat([mu, sigma]).float()


def test_param_count_closed_form():
    c, a = 64, 16
    assert n_params(AttentiveStatsPool(c, a)) == 3 * c * a + a + 2 * a + a * c + c
    assert n_params(AttentiveStatsPool(c, a, global_context=False, tdnn_norm=False)) == c * a + a + a * c + c


def test_hand_formula_without_context():
    torch.manual_seed(0)
    pool = AttentiveStatsPool(12, 6, global_context=False, tdnn_norm=False)
    x = torch.randn(2, 12, 30)
    out = pool(x)
    assert out.shape == (2, 24)
    for i in range(2):
        torch.testing.assert_close(out[i], reference_asp(pool, x[i]), atol=1e-5, rtol=1e-4)


def test_matches_speechbrain():
    sb = pytest.importorskip("speechbrain.lobes.models.ECAPA_TDNN")
    torch.manual_seed(2)
    ref = sb.AttentiveStatisticsPooling(24, attention_channels=8).eval()
    for m in ref.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    pool = AttentiveStatsPool(24, attention_channels=8).eval()
    with torch.no_grad():
        pool.tdnn[0].load_state_dict(ref.tdnn.conv.conv.state_dict())
        pool.tdnn[2].load_state_dict(ref.tdnn.norm.norm.state_dict())
        pool.conv.load_state_dict(ref.conv.conv.state_dict())
    x = torch.randn(3, 24, 50)
    lengths = torch.tensor([50, 25, 10])
    expected = ref(x, lengths / 50.0).squeeze(-1)
    torch.testing.assert_close(pool(x, lengths), expected, atol=1e-4, rtol=1e-4)


def test_attention_sums_to_one_and_zero_on_padding():
    pool = AttentiveStatsPool(8, 4).eval()
    x = torch.randn(3, 8, 20)
    lengths = torch.tensor([20, 11, 1])
    alpha = pool.attention(x, lengths)
    assert alpha.shape == (3, 8, 20)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 8))
    assert float(alpha[1, :, 11:].abs().max()) == 0.0
    assert float(alpha[2, :, 1:].abs().max()) == 0.0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 23), min_size=1, max_size=4), st.booleans())
def test_masking_exact(lengths, context):
    torch.manual_seed(len(lengths))
    pool = AttentiveStatsPool(8, 4, global_context=context).eval()
    items = [torch.randn(8, t) for t in lengths]
    assert_batch_equals_items(pool, items, time_output=False)


def test_gradients_reach_every_parameter():
    assert_grads_reach_all(AttentiveStatsPool(8, 4), torch.randn(3, 8, 12), torch.tensor([12, 5, 9]))


def test_bad_input():
    pool = AttentiveStatsPool(8, 4)
    with pytest.raises(ValueError, match="8 channels, got 6"):
        pool(torch.randn(2, 6, 5))
    with pytest.raises(ValueError, match="3-D"):
        pool(torch.randn(2, 8, 5, 5))
    with pytest.raises(ValueError, match=r"\[1, T=5\]"):
        pool(torch.randn(2, 8, 5), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer"):
        pool(torch.randn(2, 8, 5), torch.tensor([1.0, 3.0]))
