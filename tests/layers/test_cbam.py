import pytest
import torch
from _layer_checks import assert_batch_equals_items, n_params
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers import CBAMChannel


def test_param_count_and_rounding():
    # timm ChannelAttn: divisor 1, no bias -> r = round(C / 16)
    assert CBAMChannel(64).rd_channels == 4
    assert n_params(CBAMChannel(64)) == 2 * 64 * 4
    assert n_params(CBAMChannel(64, rd_channels=8, bias=True)) == 2 * 64 * 8 + 8 + 64


def test_matches_hand_formula():
    torch.manual_seed(0)
    cbam = CBAMChannel(12, rd_channels=3)
    x = torch.randn(2, 12, 9)
    w1, w2 = cbam.fc1.weight[:, :, 0].double(), cbam.fc2.weight[:, :, 0].double()
    mlp = lambda v: w2 @ torch.relu(w1 @ v)  # noqa: E731
    for i in range(2):
        xi = x[i].double()
        m = torch.sigmoid(mlp(xi.mean(-1)) + mlp(xi.amax(-1)))
        torch.testing.assert_close(cbam(x)[i].double(), xi * m[:, None], atol=1e-6, rtol=1e-5)


def test_max_pool_ignores_padding():
    cbam = CBAMChannel(4, rd_channels=2)
    x = torch.randn(1, 4, 6)
    padded = torch.cat([x, torch.full((1, 4, 5), 1e6)], dim=-1)
    torch.testing.assert_close(cbam.attention(padded, torch.tensor([6])), cbam.attention(x))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 23), min_size=1, max_size=4))
def test_masking_exact(lengths):
    torch.manual_seed(len(lengths))
    items = [torch.randn(16, t) for t in lengths]
    assert_batch_equals_items(CBAMChannel(16, rd_channels=4), items, time_output=True)


def test_bad_input():
    with pytest.raises(ValueError, match="16 channels, got 8"):
        CBAMChannel(16)(torch.randn(2, 8, 3))
    with pytest.raises(ValueError, match="lengths must be a 1-D tensor of size B=2"):
        CBAMChannel(16)(torch.randn(2, 16, 3), torch.tensor([[3, 3]]))


@pytest.mark.parametrize("name", ["se", "cbam"])
def test_bottleneck_ratio_must_be_positive(name):
    from sigattn.layers import create_channel_attention

    with pytest.raises(ValueError, match=r"rd_ratio must be > 0, got 0"):
        create_channel_attention(name, 64, rd_ratio=0)
