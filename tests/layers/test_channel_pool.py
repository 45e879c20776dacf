import pytest
import torch
from _layer_checks import assert_grads_reach_all, n_params
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers import ChannelAttentionPool


def test_hand_formula():
    torch.manual_seed(0)
    pool = ChannelAttentionPool(6, hidden_dim=5)
    h = torch.randn(2, 7, 6)
    w1, b1 = pool.proj.weight.double(), pool.proj.bias.double()
    w2, b2 = pool.score.weight[0].double(), pool.score.bias.double()
    for i in range(2):
        s = torch.stack([w2 @ torch.tanh(w1 @ h[i, c].double() + b1) + b2[0] for c in range(7)])
        alpha = torch.exp(s) / torch.exp(s).sum()
        expected = (alpha[:, None] * h[i].double()).sum(0)
        torch.testing.assert_close(pool(h)[i].double(), expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(pool.attention(h)[i].double(), alpha, atol=1e-6, rtol=1e-5)


def test_param_count_and_any_channel_count():
    d, hdim = 40, 40
    pool = ChannelAttentionPool(d)
    assert n_params(pool) == d * hdim + hdim + hdim + 1
    for c in (1, 3, 22, 64):
        h = torch.randn(4, c, d)
        assert pool(h).shape == (4, d)
        torch.testing.assert_close(pool.attention(h).sum(-1), torch.ones(4))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_masking_exact_over_channels(counts):
    torch.manual_seed(len(counts))
    pool = ChannelAttentionPool(5)
    items = [torch.randn(c, 5) for c in counts]
    batch = torch.full((len(items), max(counts), 5), 1e4)
    for i, it in enumerate(items):
        batch[i, : it.shape[0]] = it
    lengths = torch.tensor(counts)
    with torch.no_grad():
        out = pool(batch, lengths)
        alpha = pool.attention(batch, lengths)
        for i, it in enumerate(items):
            torch.testing.assert_close(out[i], pool(it[None])[0], atol=1e-5, rtol=1e-5)
            assert float(alpha[i, counts[i] :].abs().sum()) == 0.0


def test_gradients_reach_every_parameter():
    # b2 shifts every channel's score alike, and softmax is shift-invariant: its gradient is exactly zero
    # in exact arithmetic (rounding made it pass or fail by chance before this was stated)
    assert_grads_reach_all(ChannelAttentionPool(8, 4), torch.randn(3, 5, 8), inert=("score.bias",))


def test_bad_input():
    pool = ChannelAttentionPool(8)
    with pytest.raises(ValueError, match="D=8, got 6"):
        pool(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"\(B, C, D\)"):
        pool(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"\[1, C=5\]"):
        pool(torch.randn(2, 5, 8), torch.tensor([6, 2]))
