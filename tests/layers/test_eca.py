import math

import pytest
import torch
from _layer_checks import assert_batch_equals_items, n_params
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers import ECA, eca_kernel_size


def nearest_odd(t: float) -> int:
    """|t|_odd by brute force: the odd number closest to t, ties to the larger one."""
    candidates = range(1, 64, 2)
    return min(candidates, key=lambda k: (abs(k - t), -k))


# Hand-worked t = (log2 C + 1) / 2 and its nearest odd number:
# 16: 2.5 -> 3; 64: 3.5 -> 3; 256: 4.5 -> 5; 512: 5 -> 5; 1024: 5.5 -> 5; 2048: 6 -> 5|7 tie -> 7.
PAPER = {16: 3, 64: 3, 256: 5, 512: 5, 1024: 5, 2048: 7}


@pytest.mark.parametrize("c", sorted(PAPER))
def test_kernel_size_equals_formula(c):
    assert ECA(c).kernel_size == PAPER[c] == nearest_odd((math.log2(c) + 1) / 2)
    assert ECA(c).conv.weight.shape == (1, 1, PAPER[c])
    assert n_params(ECA(c)) == PAPER[c]


def test_kernel_rules_differ_only_where_documented():
    for c in range(2, 4097):
        paper, timm = eca_kernel_size(c), eca_kernel_size(c, rule="timm")
        assert paper == nearest_odd((math.log2(c) + 1) / 2)
        t = int(abs(math.log2(c) + 1) / 2)  # timm's EcaModule, written out
        assert timm == max(t if t % 2 else t + 1, 3)
    assert [eca_kernel_size(c) for c in (2, 3, 4)] == [1, 1, 1]
    assert [eca_kernel_size(c, rule="timm") for c in (2, 3, 4)] == [3, 3, 3]
    assert ECA(4, kernel_rule="timm").kernel_size == 3
    assert ECA(512, kernel_size=9).kernel_size == 9


def test_matches_hand_formula():
    torch.manual_seed(0)
    eca = ECA(10, kernel_size=3)
    x = torch.randn(2, 10, 7)
    w = eca.conv.weight[0, 0].double()
    for i in range(2):
        z = torch.nn.functional.pad(x[i].double().mean(-1), (1, 1))
        y = torch.sigmoid(torch.stack([(w * z[c : c + 3]).sum() for c in range(10)]))
        torch.testing.assert_close(eca(x)[i].double(), x[i].double() * y[:, None], atol=1e-6, rtol=1e-5)
    assert eca(torch.randn(2, 10, 3, 4)).shape == (2, 10, 3, 4)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 23), min_size=1, max_size=4))
def test_masking_exact(lengths):
    torch.manual_seed(len(lengths))
    items = [torch.randn(32, t) for t in lengths]
    assert_batch_equals_items(ECA(32), items, time_output=True)


def test_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        ECA(64, kernel_size=4)
    with pytest.raises(ValueError, match="'paper' or 'timm'"):
        ECA(64, kernel_rule="wide")
    with pytest.raises(ValueError, match="64 channels, got 32"):
        ECA(64)(torch.randn(1, 32, 5))


def test_matches_braindecode_eca_on_4d_input():
    attention = pytest.importorskip("braindecode.modules.attention")
    torch.manual_seed(3)
    ref = attention.ECA(22, 5)
    eca = ECA(22, kernel_size=5)
    with torch.no_grad():
        eca.conv.weight.copy_(ref.conv.weight)
    x = torch.randn(4, 22, 1, 50)  # braindecode's (B, C, 1, T) layout
    torch.testing.assert_close(eca(x), ref(x), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(eca(x[:, :, 0])[:, :, None], ref(x), atol=1e-6, rtol=1e-5)
