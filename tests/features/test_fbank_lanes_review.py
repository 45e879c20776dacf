"""Review of the fused lanes fbank kernel against independent references: a float64 NumPy Kaldi fbank written
here (own window, mel banks and Kaldi's reflection loop), kaldi-native-fbank, numpy.fft; plus scratch buffers
guarded against out-of-bounds access and reads of unwritten memory."""

from __future__ import annotations

import importlib
import inspect
import math
import re

import numba
import numpy as np
import pytest
import torch

from sigattn.features import Fbank, fbank, fbank_batch

fbank_module = importlib.import_module("sigattn.features.fbank")
lanes_module = importlib.import_module("sigattn.features._lanes")
knf = pytest.importorskip("kaldi_native_fbank")

EPS32 = float(np.finfo(np.float32).eps)


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def reference(x, sample_rate=16000, num_mel_bins=80, frame_length=25.0, frame_shift=10.0, snip_edges=True,
              window_type="povey", low_freq=20.0, high_freq=0.0, use_energy=False, raw_energy=True,
              htk_compat=False, energy_floor=1.0, use_power=True, use_log_fbank=True, subtract_mean=False,
              noise=None, dither=0.0, frame_base=0):  # fmt: skip
    """Kaldi fbank in float64 (pre-emphasis 0.97, DC removal, FFT padded to a power of two). ``noise[:, frame_base
    + f]`` times ``dither`` is added to frame ``f`` (the documented dither layout)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    size, shift = int(sample_rate * frame_length * 0.001), int(sample_rate * frame_shift * 0.001)
    padded = 1 << (size - 1).bit_length()
    if snip_edges:
        n_frames, first = 1 + (n - size) // shift, 0
    else:
        n_frames, first = (n + shift // 2) // shift, shift // 2 - size // 2
    idx = first + np.arange(n_frames)[:, None] * shift + np.arange(size)
    while ((idx < 0) | (idx >= n)).any():  # Kaldi's loop: -1 -> 0, -2 -> 1, n -> n - 1
        idx = np.where(idx < 0, -idx - 1, np.where(idx >= n, 2 * n - 1 - idx, idx))
    fr = x[idx]
    if dither:
        fr = fr + dither * noise[:, frame_base : frame_base + n_frames].T
    fr -= fr.mean(axis=1, keepdims=True)
    energy = (fr**2).sum(axis=1)
    fr = fr - 0.97 * np.concatenate([fr[:, :1], fr[:, :-1]], axis=1)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / (size - 1))
    fr *= {"povey": hann**0.85, "hamming": 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(size) / (size - 1))}[
        window_type
    ]
    if not raw_energy:
        energy = (fr**2).sum(axis=1)
    spec = np.abs(np.fft.rfft(fr, n=padded, axis=1))
    power = spec**2 if use_power else spec
    high = high_freq + sample_rate / 2 if high_freq <= 0 else high_freq
    edges = np.linspace(_mel(low_freq), _mel(high), num_mel_bins + 2)
    m = _mel(np.arange(padded // 2 + 1) * sample_rate / padded)
    m[-1] = -1.0  # Kaldi leaves the Nyquist bin out
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    banks = np.clip(np.minimum((m - left) / (centre - left), (right - m) / (right - centre)), 0.0, None)
    mel = power @ banks.T
    if use_log_fbank:
        mel = np.log(np.maximum(mel, EPS32))
    if use_energy:
        e = np.log(np.maximum(energy, EPS32))
        e = np.maximum(e, math.log(energy_floor)) if energy_floor > 0 else e
        mel = np.concatenate([mel, e[:, None]] if htk_compat else [e[:, None], mel], axis=1)
    if subtract_mean:
        mel = mel - mel.mean(axis=0)
    return mel


def knf_fbank(x, sample_rate=16000, frame_length=25.0, frame_shift=10.0, snip_edges=True):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.frame_length_ms = frame_length
    opts.frame_opts.frame_shift_ms = frame_shift
    opts.frame_opts.snip_edges = snip_edges
    opts.mel_opts.num_bins = 80
    f = knf.OnlineFbank(opts)
    f.accept_waveform(sample_rate, np.asarray(x, dtype=np.float32).tolist())
    f.input_finished()
    return np.stack([np.asarray(f.get_frame(i)) for i in range(f.num_frames_ready)])


@pytest.mark.parametrize(
    ("kw", "n"),
    [
        (dict(frame_shift=5.0), 40),  # one 400-sample frame from 40 samples: reflected 5 times
        (dict(frame_length=50.0), 90),
        (dict(frame_length=25.0, frame_shift=2.0), 16),
    ],
)
def test_torch_module_reflects_short_items_like_kaldi(kw, n):
    """snip_edges=False on items much shorter than a frame: Kaldi reflects until the index is inside the item
    (kaldi-native-fbank, the kernel and the float64 reference agree); the module must too, alone and batched."""
    rng = np.random.default_rng(n)
    x = (3000 * rng.standard_normal(n)).astype(np.float32)
    ref = reference(x, snip_edges=False, **kw)
    ours = fbank(x, snip_edges=False, **kw)
    strong = ref >= ref.max(axis=1, keepdims=True) - 5 * math.log(10)
    assert np.abs(knf_fbank(x, snip_edges=False, **kw) - ref)[strong].max() <= 1e-3  # the references agree
    assert np.abs(ours - ref)[strong].max() <= 1e-3
    batch = np.zeros((2, 3000), dtype=np.float32)
    batch[0, :n] = x
    batch[1] = rng.standard_normal(3000)
    feats, n_fr = Fbank(snip_edges=False, **kw)(torch.from_numpy(batch), torch.tensor([n, 3000]))
    assert np.abs(feats[0, :, : n_fr[0]].numpy().T - ours).max() <= 1e-5


def test_mel_band_without_fft_bins_is_a_value_error():
    with pytest.raises(ValueError, match="FFT bin"):
        fbank(np.ones(4000, dtype=np.float32), low_freq=100.0, high_freq=110.0, num_mel_bins=3)
