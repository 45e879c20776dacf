"""The fused lanes fbank kernel (power-of-two FFT sizes): its FFT against NumPy's, its features against a float64
NumPy implementation of Kaldi fbank written here, against torchaudio at other sample rates, and the torch
module's "exact" FFT against the kernel (same spectrum bit for bit)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from sigattn.features import Fbank, fbank, fbank_batch
from sigattn.features._lanes import FAST_N, LANES, fft_lanes_test, lane_plan
from sigattn.features.fbank import mel_banks, window_function

fbank_module = importlib.import_module("sigattn.features.fbank")
kaldi = pytest.importorskip("torchaudio.compliance.kaldi")


@pytest.mark.parametrize("n", FAST_N)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fft_lanes_matches_numpy(n, dtype):
    rng = np.random.default_rng(n)
    z = rng.standard_normal((LANES, n)) + 1j * rng.standard_normal((LANES, n))  # 16 signals
    order, tw = lane_plan(n)
    tile = np.zeros((n, 2, LANES), dtype=dtype)  # row p: input order[p], real parts then imaginary parts
    tile[:, 0] = z.real.T[order]
    tile[:, 1] = z.imag.T[order]
    flat = tile.reshape(-1)
    fft_lanes_test(flat, n, tw.astype(dtype))
    got = (tile[:, 0] + 1j * tile[:, 1]).T
    ref = np.fft.fft(z, axis=-1)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    assert np.abs(got - ref).max() <= tol * np.abs(ref).max()


def numpy_fbank(x: np.ndarray, sr: int, num_bins: int = 80, shift_ms: float = 10.0, length_ms: float = 25.0):
    """Kaldi fbank (snip_edges, povey window, pre-emphasis 0.97, DC removal, power, log), float64, NumPy FFT."""
    size, shift = int(sr * length_ms / 1000), int(sr * shift_ms / 1000)
    padded = 1 << (size - 1).bit_length()
    n_frames = 1 + (len(x) - size) // shift
    idx = np.arange(n_frames)[:, None] * shift + np.arange(size)
    frames = x.astype(np.float64)[idx]
    frames -= frames.mean(axis=1, keepdims=True)
    frames = frames - 0.97 * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames *= window_function("povey", size)
    power = np.abs(np.fft.rfft(frames, n=padded, axis=1)) ** 2
    mel = power @ mel_banks(num_bins, padded, sr, 20.0, 0.0).T
    return np.log(np.maximum(mel, np.finfo(np.float32).eps))


def speechlike(sr: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonics with a slow envelope, noise and a DC offset, at int16 scale."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(h * phase) / h for h in range(1, 25))
    x = 3000 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 30 * rng.standard_normal(t.size) + 200
    return x.astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_lanes_kernel_matches_float64_numpy_and_torchaudio(sr):
    x = speechlike(sr)
    size = int(sr * 0.025)
    assert (1 << (size - 1).bit_length()) // 2 in FAST_N  # these rates run the lanes kernel
    ours = fbank(x, sample_rate=sr)
    oracle = numpy_fbank(x, sr)
    ta = kaldi.fbank(torch.from_numpy(x)[None], sample_frequency=sr, num_mel_bins=80, dither=0.0).numpy()
    # bins within 50 dB of their frame's peak: float32 rounding only; all bins: the float32 floor
    strong = oracle >= oracle.max(axis=1, keepdims=True) - 5 * math.log(10)
    assert strong.mean() > 0.5
    assert np.abs(ours - oracle)[strong].max() <= 2e-4
    assert np.abs(ours - oracle).max() <= 2e-2
    assert np.abs(ours - ta)[strong].max() <= 1e-3
    # the float64 mode runs the same kernel in double precision
    assert np.abs(fbank(x.astype(np.float64), sample_rate=sr, dtype="float64") - oracle).max() <= 1e-9


def test_lanes_and_torch_fft_paths_agree_and_gap_frames():
    """The lanes kernel vs the block path (torch.fft) on the same options, including frame_shift > length."""
    x = speechlike(16000, 0.8, seed=3)
    for kw in (
        dict(snip_edges=False, use_energy=True),
        dict(frame_shift=30.0, frame_length=25.0, use_energy=True, raw_energy=False),
        dict(use_power=False, window_type="hamming"),
    ):
        lanes = fbank(x, **kw)
        saved = fbank_module.FAST_N
        fbank_module.FAST_N = ()  # force the block path
        try:
            blocks = fbank(x, **kw)
        finally:
            fbank_module.FAST_N = saved
        strong = blocks >= blocks.max(axis=1, keepdims=True) - 5 * math.log(10)
        assert np.abs(lanes - blocks)[strong].max() <= 5e-4, kw
        assert np.abs(lanes - blocks).max() <= 2e-2, kw


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
@pytest.mark.parametrize("snip", [True, False])
def test_torch_module_exact_fft_equals_kernel(sr, snip):
    """Same FFT, same operation order: the module and the kernel differ only by the mel sums' rounding."""
    rng = np.random.default_rng(sr)
    waves = [speechlike(sr, 0.9, seed=1), (2 * rng.standard_normal(int(0.5 * sr))).astype(np.float32)]
    padded = torch.zeros(2, waves[0].size)
    for b, w in enumerate(waves):
        padded[b, : w.size] = torch.from_numpy(w)
    lengths = torch.tensor([w.size for w in waves])
    ref, n_ref = fbank_batch(waves, sample_rate=sr, snip_edges=snip, use_energy=True)
    feats, n = Fbank(sample_rate=sr, snip_edges=snip, use_energy=True)(padded, lengths)
    assert n.tolist() == n_ref.tolist()
    assert np.abs(feats.numpy() - ref).max() <= 1e-5
    # torch's own FFT: equal where the spectrum is well above float32 rounding, not in near-silent bins
    native, _ = Fbank(sample_rate=sr, snip_edges=snip, use_energy=True, fft="native")(padded, lengths)
    assert np.abs(native.numpy() - ref).max() <= 2e-2


def test_torch_module_fft_option_is_checked():
    with pytest.raises(ValueError, match="fft must be"):
        Fbank(fft="fast")


@pytest.mark.parametrize("cast", ["float", "half", "bfloat16", "double"])
def test_torch_module_constants_survive_dtype_casts(cast):
    """A model holding Fbank gets cast as a whole: the window, twiddles and banks keep their dtypes."""
    x = speechlike(16000, 0.5)
    ref = fbank(x)
    module = getattr(Fbank(), cast)()
    assert module.window.dtype == torch.float64 and module.fft_tw.dtype == torch.float64
    assert module.banks.dtype == torch.float32
    feats, _ = module(torch.from_numpy(x)[None])
    assert np.abs(feats[0].numpy().T - ref).max() <= 1e-5


def test_torch_module_rejects_a_band_without_bins_like_fbank():
    with pytest.raises(ValueError, match="no FFT bin"):
        Fbank(low_freq=100.0, high_freq=110.0)
    with pytest.raises(ValueError, match="no FFT bin"):
        fbank(np.zeros(1600, dtype=np.float32), low_freq=100.0, high_freq=110.0)
