"""Augmentation: SNR, reverberation with a unit impulse, speed perturbation, SpecAugment."""

import numpy as np
import pytest
import soundfile as sf

from sigattn.tasks.speaker.augment import AddNoise, AddReverb, SpecAugment, mix_at_snr, speed_perturb

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def test_mix_at_snr_exact():
    rng = np.random.default_rng(0)
    w, n = rng.standard_normal(4000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    out = mix_at_snr(w, n, 7.0)
    added = out.astype(np.float64) - w
    snr = 10 * np.log10(np.mean(w.astype(np.float64) ** 2) / np.mean(added**2))
    assert snr == pytest.approx(7.0, abs=1e-3)


def test_add_noise_from_folder(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "a.wav", 0.1 * rng.standard_normal(20000), 16000)
    aug = AddNoise(tmp_path / "noise", snr_range=(5.0, 5.0))
    w = (0.3 * rng.standard_normal(8000)).astype(np.float32)
    added = aug(w, np.random.default_rng(0)).astype(np.float64) - w
    assert 10 * np.log10(np.mean(w.astype(np.float64) ** 2) / np.mean(added**2)) == pytest.approx(
        5.0, abs=0.05
    )
    with pytest.raises(ValueError, match="no audio files"):
        (tmp_path / "empty").mkdir()
        AddNoise(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing"):
        AddNoise(tmp_path / "missing")


def test_reverb_with_delayed_impulse_is_identity():
    rir = np.zeros(300, dtype=np.float32)
    rir[40] = 0.5
    w = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    np.testing.assert_allclose(AddReverb([rir])(w, np.random.default_rng(0)), w, atol=1e-5)


def test_speed_perturb_matches_scipy_resampling():
    from scipy.signal import resample_poly

    w = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32)
    fast, slow = speed_perturb(w, 1.1), speed_perturb(w, 0.9)
    assert fast.shape == (14546,) and slow.shape == (17778,)
    np.testing.assert_allclose(fast, resample_poly(w, 10, 11), atol=1e-6)
    # the tone moves to 200 * 1.1 Hz
    spec = np.abs(np.fft.rfft(fast[:14000]))
    assert np.argmax(spec) * 16000 / 14000 == pytest.approx(220, abs=2)


def test_spec_augment_zeros_bands():
    f = np.ones((80, 100), dtype=np.float32)
    out = SpecAugment(n_freq=2, max_freq=8, n_time=2, max_time=10)(f, np.random.default_rng(0))
    assert out.shape == f.shape and f.min() == 1.0  # input untouched
    zero_rows = np.where((out == 0).all(axis=1))[0]
    zero_cols = np.where((out == 0).all(axis=0))[0]
    assert len(zero_rows) <= 16 and len(zero_cols) <= 20 and (out == 0).any()
