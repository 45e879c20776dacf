"""Overlap-save FIR (many segments, short signals, trials, float32) against mne.filter.filter_data."""

from __future__ import annotations

import numpy as np
import pytest

from sigattn.features import fir_filter
from sigattn.features.filters import _ols_fft_size

mne = pytest.importorskip("mne")


@pytest.mark.parametrize(
    ("shape", "sfreq", "l_freq", "h_freq"),
    [
        ((3, 100), 160.0, 8.0, 30.0),  # shorter than the 265 taps: limited reflection, one segment
        ((2, 5, 700), 160.0, 8.0, 30.0),  # trials
        ((4, 20000), 250.0, 1.0, 40.0),  # many segments
        ((2, 3000), 250.0, None, 40.0),
        ((2, 3000), 250.0, 0.5, None),
    ],
)
def test_ols_matches_mne(shape, sfreq, l_freq, h_freq):
    mne.set_log_level("ERROR")
    x = np.random.default_rng(0).standard_normal(shape)
    ref = mne.filter.filter_data(x.reshape(-1, shape[-1]), sfreq, l_freq, h_freq).reshape(shape)
    scale = np.abs(ref).max()
    assert np.abs(fir_filter(x, sfreq, l_freq, h_freq) - ref).max() <= 1e-10 * scale
    y32 = fir_filter(x.astype(np.float32), sfreq, l_freq, h_freq)
    assert y32.dtype == np.float32 and np.abs(y32 - ref).max() <= 1e-5 * scale


def test_ols_fft_size_follows_mne_cost():
    assert _ols_fft_size(96000 + 2 * 264, 265) == 2048  # 600 s at 160 Hz, 8-30 Hz
    assert _ols_fft_size(1169, 265) == 1024
    assert _ols_fft_size(5, 9) >= 16  # always longer than the filter
