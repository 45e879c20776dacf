import pytest
import torch
from _layer_checks import assert_batch_equals_items, assert_grads_reach_all, n_params
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers import SqueezeExcite, make_divisible


def reference_se(layer: SqueezeExcite, x_item: torch.Tensor) -> torch.Tensor:
    """Hand formula on one unpadded item (C, T): s = sigmoid(W2 relu(W1 z + b1) + b2)."""
    z = x_item.double().mean(-1)
    w1, b1 = layer.fc1.weight[:, :, 0].double(), layer.fc1.bias.double()
    w2, b2 = layer.fc2.weight[:, :, 0].double(), layer.fc2.bias.double()
    s = torch.sigmoid(w2 @ torch.relu(w1 @ z + b1) + b2)
    return (x_item.double() * s[:, None]).float()


@pytest.mark.parametrize(
    "c, ratio, expected",
    # hand-worked make_divisible(C/16, 8, round_limit=0): floor((v + 4) / 8) * 8, at least 8
    [
        (16, 1 / 16, 8),
        (64, 1 / 16, 8),
        (256, 1 / 16, 16),
        (512, 1 / 16, 32),
        (100, 1 / 16, 8),
        (200, 0.25, 48),
    ],
)
def test_bottleneck_rounding(c, ratio, expected):
    assert SqueezeExcite(c, rd_ratio=ratio).rd_channels == expected
    assert make_divisible(c * ratio, 8, round_limit=0.0) == expected


def test_param_count_closed_form():
    for c, r in [(512, 128), (1024, 128), (64, 8)]:
        assert n_params(SqueezeExcite(c, rd_channels=r)) == c * r + r + r * c + c
        assert n_params(SqueezeExcite(c, rd_channels=r, bias=False)) == 2 * c * r


def test_matches_hand_formula_and_shapes():
    torch.manual_seed(0)
    se = SqueezeExcite(32, rd_channels=8)
    x = torch.randn(3, 32, 17)
    y = se(x)
    assert y.shape == x.shape
    for i in range(3):
        torch.testing.assert_close(y[i], reference_se(se, x[i]), atol=1e-5, rtol=1e-5)
    assert se.attention(x).shape == (3, 32)
    assert se(torch.randn(2, 32, 4, 5)).shape == (2, 32, 4, 5)


def test_matches_speechbrain_seblock():
    sb = pytest.importorskip("speechbrain.lobes.models.ECAPA_TDNN")
    torch.manual_seed(1)
    ref = sb.SEBlock(48, 16, 48)
    se = SqueezeExcite(48, rd_channels=16)
    with torch.no_grad():
        se.fc1.weight.copy_(ref.conv1.conv.weight)
        se.fc1.bias.copy_(ref.conv1.conv.bias)
        se.fc2.weight.copy_(ref.conv2.conv.weight)
        se.fc2.bias.copy_(ref.conv2.conv.bias)
    x = torch.randn(3, 48, 40)
    lengths = torch.tensor([40, 20, 10])
    torch.testing.assert_close(se(x, lengths), ref(x, lengths / 40.0), atol=1e-5, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 23), min_size=1, max_size=4))
def test_masking_exact(lengths):
    torch.manual_seed(len(lengths))
    se = SqueezeExcite(16, rd_channels=4)
    items = [torch.randn(16, t) for t in lengths]
    assert_batch_equals_items(se, items, time_output=True)


def test_gradients_reach_every_parameter():
    se = SqueezeExcite(16)
    assert_grads_reach_all(se, torch.randn(2, 16, 9))


def test_bad_input():
    se = SqueezeExcite(16)
    with pytest.raises(ValueError, match="16 channels, got 8"):
        se(torch.randn(2, 8, 5))
    with pytest.raises(ValueError, match="3-D or 4-D"):
        se(torch.randn(16, 5))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=5\]"):
        se(torch.randn(2, 16, 5), torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="size B=2"):
        se(torch.randn(2, 16, 5), torch.tensor([5]))
    with pytest.raises(ValueError, match="rd_channels"):
        SqueezeExcite(16, rd_channels=0)
