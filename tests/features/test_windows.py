"""Sliding windows (zero-copy views) and RevIN statistics vs hand-worked indexing and formulas."""

from __future__ import annotations

import numpy as np
import pytest

from sigattn.features import instance_norm_stats, sliding_windows


@pytest.mark.parametrize("stride", [1, 3])
def test_windows_match_indexing_and_are_views(stride):
    x = np.random.default_rng(0).standard_normal((50, 3))
    xi, yi = sliding_windows(x, lookback=10, horizon=4, stride=stride)
    starts = list(range(0, 50 - 14 + 1, stride))
    assert xi.shape == (len(starts), 3, 10) and yi.shape == (len(starts), 3, 4)
    for n, s in enumerate(starts):
        np.testing.assert_array_equal(xi[n], x[s : s + 10].T)
        np.testing.assert_array_equal(yi[n], x[s + 10 : s + 14].T)
    assert np.shares_memory(xi, x) and np.shares_memory(yi, x)
    assert not xi.flags.writeable
    # (C, T) layout gives the same windows
    xc, yc = sliding_windows(np.ascontiguousarray(x.T), 10, 4, stride, time_axis=-1)
    np.testing.assert_array_equal(xc, xi)
    np.testing.assert_array_equal(yc, yi)


def test_windows_bad_input():
    with pytest.raises(ValueError, match="shorter than lookback"):
        sliding_windows(np.zeros((10, 2)), 8, 4)
    with pytest.raises(ValueError, match="stride"):
        sliding_windows(np.zeros((10, 2)), 2, 1, stride=0)
    with pytest.raises(ValueError, match="2-D"):
        sliding_windows(np.zeros(10), 2, 1)
    with pytest.raises(ValueError, match=r"index \(3, 0\)"):
        sliding_windows(np.array([[0.0], [1.0], [2.0], [np.nan], [4.0]]), 2, 1)


def test_instance_norm_stats_formula():
    x = np.random.default_rng(1).normal(3.0, 2.0, (4, 3, 96))
    mean, std = instance_norm_stats(x, axis=-1, eps=1e-5)
    assert mean.shape == std.shape == (4, 3, 1)
    for b in range(4):
        for c in range(3):
            v = x[b, c]
            m = sum(v) / v.size
            np.testing.assert_allclose(mean[b, c, 0], m, rtol=1e-12)
            np.testing.assert_allclose(std[b, c, 0], np.sqrt(sum((v - m) ** 2) / v.size + 1e-5), rtol=1e-12)
    normed = (x - mean) / std
    np.testing.assert_allclose(normed.mean(-1), 0, atol=1e-12)
