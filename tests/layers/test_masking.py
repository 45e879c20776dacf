"""The masked statistics against NumPy/SciPy on each item's valid slice, and the input checks."""

import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers._masking import (
    check_input,
    lengths_to_mask,
    masked_max,
    masked_mean,
    masked_mean_std,
    masked_softmax,
)


def padded(lengths, c=3, fill=float("nan"), seed=0):
    rng = np.random.default_rng(seed)
    t = max(lengths)
    x = np.full((len(lengths), c, t), fill)
    for i, n in enumerate(lengths):
        x[i, :, :n] = rng.standard_normal((c, n)) * 3 + 1
    return x, torch.tensor(lengths)


def test_lengths_to_mask():
    x = torch.zeros(3, 1, 4)
    mask = lengths_to_mask(torch.tensor([4, 1, 2]), 4, x)
    expected = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert mask.shape == (3, 1, 4)
    assert torch.equal(mask[:, 0], expected)
    assert lengths_to_mask(None, 4, x) is None


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, 17), min_size=1, max_size=5), st.sampled_from([float("nan"), float("inf"), 1e30])
)
def test_statistics_match_numpy_whatever_the_padding(lengths, fill):
    x, lens = padded(lengths, fill=fill)
    xt = torch.from_numpy(x)
    mask = lengths_to_mask(lens, xt.shape[-1], xt)
    mean = masked_mean(xt, mask)
    m2, std = masked_mean_std(xt, mask)
    mx = masked_max(xt, mask)
    soft = masked_softmax(xt, mask)
    for i, n in enumerate(lengths):
        valid = x[i, :, :n]
        np.testing.assert_allclose(mean[i, :, 0].numpy(), valid.mean(-1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m2[i, :, 0].numpy(), valid.mean(-1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            std[i, :, 0].numpy(), np.sqrt(np.maximum(valid.var(-1), 1e-12)), rtol=1e-10
        )
        np.testing.assert_array_equal(mx[i, :, 0].numpy(), valid.max(-1))
        np.testing.assert_allclose(soft[i, :, :n].numpy(), scipy.special.softmax(valid, axis=-1), rtol=1e-12)
        assert np.all(soft[i, :, n:].numpy() == 0.0)


def test_unmasked_paths_match_numpy():
    x = np.random.default_rng(1).standard_normal((2, 3, 5))
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(masked_mean(xt, None)[..., 0].numpy(), x.mean(-1))
    np.testing.assert_allclose(masked_mean_std(xt, None)[1][..., 0].numpy(), x.std(-1))
    np.testing.assert_array_equal(masked_max(xt, None)[..., 0].numpy(), x.max(-1))
    np.testing.assert_allclose(masked_softmax(xt, None).numpy(), scipy.special.softmax(x, axis=-1))


def test_std_floor():
    x = torch.ones(1, 2, 4)
    assert torch.allclose(masked_mean_std(x, None)[1], torch.full((1, 2, 1), 1e-6))


def test_gradients_are_finite_and_zero_on_padding():
    x = torch.randn(2, 3, 6, requires_grad=True)
    mask = lengths_to_mask(torch.tensor([6, 2]), 6, x)
    out = masked_softmax(x, mask).sum() + masked_max(x, mask).sum() + sum(masked_mean_std(x, mask)).sum()
    (out + (masked_softmax(x, mask) * torch.randn(2, 3, 6)).sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert float(x.grad[1, :, 2:].abs().max()) == 0.0


def test_low_precision_masked_softmax():
    scores = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    mask = lengths_to_mask(torch.tensor([8, 3]), 8, scores)
    out = masked_softmax(scores, mask)
    assert out.dtype == torch.bfloat16
    assert float(out[1, :, 3:].abs().max()) == 0.0
    torch.testing.assert_close(out.float().sum(-1), torch.ones(2, 3), atol=1e-2, rtol=0)


def test_check_input_messages():
    x = torch.randn(2, 4, 5)
    check_input(x, 4, torch.tensor([5, 1]))
    with pytest.raises(TypeError, match="expected a torch.Tensor, got ndarray"):
        check_input(x.numpy(), 4)
    with pytest.raises(ValueError, match=r"expected a 3-D input .* got shape \(4, 5\)"):
        check_input(x[0], 4)
    with pytest.raises(ValueError, match="built for 8 channels, got 4"):
        check_input(x, 8, name="SE")
    with pytest.raises(ValueError, match="lengths must be a 1-D tensor of size B=2, got \\(3,\\)"):
        check_input(x, 4, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="got list"):
        check_input(x, 4, [5, 5])
    with pytest.raises(ValueError, match="integer tensor"):
        check_input(x, 4, torch.tensor([5.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[1, T=5\], got values in \[0, 5\]"):
        check_input(x, 4, torch.tensor([5, 0]))
    with pytest.raises(ValueError, match="only defined for \\(B, C, T\\)"):
        check_input(torch.randn(2, 4, 3, 3), 4, torch.tensor([3, 3]), ranks=(3, 4))
    y = x.clone()
    y[1, 2, 4] = float("nan")
    check_input(y, 4)  # off by default
    with pytest.raises(ValueError, match=r"NaN/Inf, first at index \(1, 2, 4\)"):
        check_input(y, 4, check_finite=True)
    check_input(y, 4, torch.tensor([5, 3]), check_finite=True)  # the NaN is in the padding: fine
