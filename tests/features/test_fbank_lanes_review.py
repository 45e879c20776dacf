"""Review of the fused lanes fbank kernel against independent references: a float64 NumPy Kaldi fbank written
here (own window, mel banks and Kaldi's reflection loop), kaldi-native-fbank, numpy.fft; plus scratch buffers
guarded against out-of-bounds access and reads of unwritten memory."""

from __future__ import annotations

import importlib
import inspect
import math

import numba
import numpy as np
import pytest
import torch

from sigattn.features import Fbank, fbank, fbank_batch
from sigattn.features.fbank import DitherNoise

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


OPTION_CASES = [
    dict(sample_rate=8000),  # shift 80: not a multiple of 16
    dict(sample_rate=22050, use_energy=True),  # 551-sample frames, shift 220
    dict(sample_rate=44100, num_mel_bins=128, use_energy=True, raw_energy=False, htk_compat=True),
    dict(num_mel_bins=23, low_freq=100.0, high_freq=-500.0, use_power=False, window_type="hamming"),
    dict(num_mel_bins=40, use_log_fbank=False, subtract_mean=True),
    dict(snip_edges=False, frame_shift=30.0, use_energy=True, energy_floor=0.0),  # shift > frame length
    dict(snip_edges=False, sample_rate=8000, frame_shift=12.5),
]


@pytest.mark.parametrize("kw", OPTION_CASES)
def test_partial_lane_groups_and_options_match_float64_reference(kw):
    """1, 15, 16, 17 and 33 frames (partial 16-frame groups) in one batch, list and 2-D forms, float64 and
    float32 outputs, against the float64 reference; per-item calls equal the batch."""
    sr = kw.get("sample_rate", 16000)
    size, shift = int(sr * kw.get("frame_length", 25.0) / 1000), int(sr * kw.get("frame_shift", 10.0) / 1000)
    rng = np.random.default_rng(sr)
    if kw.get("snip_edges", True):
        lengths = [size + (k - 1) * shift + int(rng.integers(shift)) for k in (1, 15, 16, 17, 33)]
    else:
        lengths = [k * shift + int(rng.integers(shift // 2)) for k in (1, 15, 16, 17, 33)]
    waves = [(3000 * rng.standard_normal(n) + 200).astype(np.float32) for n in lengths]
    f64, n_fr = fbank_batch([w.astype(np.float64) for w in waves], dtype="float64", **kw)
    f32, n32 = fbank_batch(waves, **kw)
    padded = np.zeros((len(waves), max(lengths)), dtype=np.float32)
    for b, w in enumerate(waves):
        padded[b, : w.size] = w
    f2d, _ = fbank_batch(padded, lengths=lengths, **kw)
    np.testing.assert_array_equal(f2d, f32)
    assert n_fr.tolist() == n32.tolist() == [1, 15, 16, 17, 33]
    for b, w in enumerate(waves):
        ref = reference(w, **kw)
        scale = max(1.0, np.abs(ref).max()) if not kw.get("use_log_fbank", True) else 1.0
        assert np.abs(f64[b, :, : n_fr[b]].T - ref).max() <= 1e-9 * scale
        assert not f64[b, :, n_fr[b] :].any() and not f32[b, :, n_fr[b] :].any()
        strong = ref >= ref.max(axis=1, keepdims=True) - 5 * math.log(10)
        if kw.get("use_log_fbank", True) and not kw.get("subtract_mean", False):
            assert np.abs(f32[b, :, : n_fr[b]].T - ref)[strong].max() <= 5e-4
        else:
            assert np.abs(f32[b, :, : n_fr[b]].T - ref).max() <= 1e-4 * scale
        one = fbank(w, **kw)
        np.testing.assert_allclose(one, f32[b, :, : n_fr[b]].T, rtol=0, atol=1e-5 * scale)


def test_items_shorter_than_one_frame_raise_naming_the_item():
    ok = np.ones(1000, dtype=np.float32)
    with pytest.raises(ValueError, match="waveform 1 has 399 samples, shorter than one frame"):
        fbank_batch([ok, ok[:399]])
    with pytest.raises(ValueError, match="waveform 2 has 79 samples"):
        fbank_batch(np.ones((3, 1000), dtype=np.float32), lengths=[1000, 80, 79], snip_edges=False)
    assert fbank_batch([ok, ok[:80]], snip_edges=False)[1].tolist() == [6, 1]


def test_dither_uses_the_documented_noise_of_each_frame():
    """Noise ``DitherNoise(seed, frame_size)``, column = global frame (batch order): checks the kernel's noise
    offsets for every lane, the batch's frame bases (one item crosses the 2048-frame noise block), the energy."""
    rng = np.random.default_rng(6)
    waves = [
        rng.standard_normal(n) for n in (400 + 160 * 16, 160 * 2100, 400 + 160 * 3)
    ]  # 17, 2098, 4 frames
    feats, n_fr = fbank_batch(waves, dither=0.7, seed=4, dtype="float64", use_energy=True)
    noise = DitherNoise(4, 400)(0, int(n_fr.sum()) + 16)
    base = np.concatenate([[0], np.cumsum(n_fr)[:-1]])
    for b, w in enumerate(waves):
        ref = reference(w, use_energy=True, noise=noise, dither=0.7, frame_base=int(base[b]))
        assert np.abs(feats[b, :, : n_fr[b]].T - ref).max() <= 1e-9
    one = fbank(
        waves[0], dither=0.7, seed=4, dtype="float64", snip_edges=False, raw_energy=False, use_energy=True
    )
    noise = DitherNoise(4, 400)(0, one.shape[0] + 16)
    ref = reference(waves[0], snip_edges=False, raw_energy=False, use_energy=True, noise=noise, dither=0.7)
    assert np.abs(one - ref).max() <= 1e-9


def test_dither_noise_blocks_are_consistent_and_seeded():
    """Any range of frames gets the same columns as one long draw (across 2048-frame blocks); seeds repeat."""
    whole = DitherNoise(3, 40)(0, 5000)
    for f0, f1 in ((0, 1), (2047, 2049), (100, 4200), (4095, 4097)):
        np.testing.assert_array_equal(DitherNoise(3, 40)(f0, f1), whole[:, f0:f1])
    assert not np.array_equal(DitherNoise(4, 40)(0, 5000), whole)
    assert abs(whole.mean()) < 0.01 and abs(whole.std() - 1.0) < 0.01
    # the columns are independent draws: neighbouring frames (also across a block edge) are uncorrelated
    assert abs(np.corrcoef(whole[:, 2047], whole[:, 2048])[0, 1]) < 0.5


def test_many_short_items_same_result_for_one_and_two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads (NUMBA_NUM_THREADS=1 here)")
    rng = np.random.default_rng(8)
    waves = [rng.standard_normal(int(n)).astype(np.float32) for n in rng.integers(400, 3000, 200)]
    before = numba.get_num_threads()
    got = {}
    try:
        for t in (1, 2):
            numba.set_num_threads(t)
            got[t] = (
                fbank_batch(waves, dither=0.3, seed=7, use_energy=True)[0],
                fbank_batch(waves, sample_rate=8000, snip_edges=False, dtype="float64")[0],
            )
    finally:
        numba.set_num_threads(before)
    for a, b in zip(got[1], got[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kw", "n"),
    [
        (dict(), 400 + 160 * 17 + 37),
        (dict(snip_edges=False, sample_rate=8000), 120),
        (dict(frame_shift=30.0, snip_edges=False, dither=0.5, seed=1), 1500),
    ],
)
def test_non_finite_found_at_every_position(kw, n):
    base = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    step = max(1, n // 400)
    for pos in range(0, n, step):
        x = base.copy()
        x[pos] = np.nan if pos % 2 else -np.inf
        with pytest.raises(
            ValueError, match=rf"waveforms\[1\] contains a non-finite value .* at index {pos}$"
        ):
            fbank_batch([base, x], **kw)


GUARD = 64


@pytest.mark.parametrize(
    "kw",
    [
        dict(use_energy=True),
        dict(sample_rate=8000, frame_shift=12.5, snip_edges=False, dither=1.0, seed=0),
        dict(frame_length=2.0, frame_shift=0.5, dtype="float64", num_mel_bins=23),  # shift 8, 16-point FFT
        dict(frame_length=128.0, frame_shift=3.0, snip_edges=False, htk_compat=True, use_energy=True),
        dict(frame_shift=30.0, sample_rate=22050),
    ],
)
def test_kernel_stays_inside_its_buffers(kw, monkeypatch):
    """vload/vstore are not bounds checked: run the kernel on views of larger arrays whose margins are NaN, with
    the scratch buffers (and the output) NaN-filled, so that an access outside a buffer or a read of a
    scratch element not written first shows as a changed margin or a non-finite feature."""
    real = lanes_module.fbank_groups
    names = list(inspect.signature(real.py_func).parameters)
    touched = []

    def guarded(*args):
        args = list(args)
        bufs = {}
        for name in ("x", "noise", "out", "block", "melbuf", "t"):
            i = names.index(name)
            big = np.full(args[i].size + 2 * GUARD, np.nan, dtype=args[i].dtype)
            if name in ("x", "noise"):
                big[GUARD:-GUARD] = args[i]
            bufs[name] = (big, args[i])
            args[i] = big[GUARD:-GUARD]
        total = real(*args)
        for name, (big, _) in bufs.items():
            if not (np.isnan(big[:GUARD]).all() and np.isnan(big[-GUARD:]).all()):
                touched.append(name)
        big, out = bufs["out"]
        written = ~np.isnan(big[GUARD:-GUARD])
        out[written] = big[GUARD:-GUARD][written]
        return total

    sr = kw.get("sample_rate", 16000)
    size = int(sr * kw.get("frame_length", 25.0) / 1000)
    rng = np.random.default_rng(size)
    waves = [rng.standard_normal(int(n)).astype(np.float32) for n in (size, 17 * size, 3 * size + 5)]
    monkeypatch.setattr(lanes_module, "fbank_groups", guarded)
    got = fbank_batch(waves, **kw)[0], fbank(waves[1], **kw)
    assert not touched
    monkeypatch.undo()
    expect = fbank_batch(waves, **kw)[0], fbank(waves[1], **kw)
    for e, g in zip(expect, got):
        assert np.isfinite(g).all()
        np.testing.assert_array_equal(g, e)


class _LongItems(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        x = np.random.default_rng(i).standard_normal(16000 * 2).astype(np.float32)  # 198 frames: 2 chunks
        return torch.from_numpy(fbank(x, dither=0.1, seed=i))


def test_fork_workers_after_the_parent_ran_the_lanes_pool():
    """The parent spreads lanes chunks over its thread pool; forked DataLoader workers (which inherit the thread
    count) must get a pool of their own and the same features."""
    import multiprocessing as mp

    if numba.config.NUMBA_NUM_THREADS < 2 or "fork" not in mp.get_all_start_methods():
        pytest.skip("needs 2 Numba threads and the fork start method")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        ds = _LongItems()
        expected = [ds[i] for i in range(len(ds))]
        loader = torch.utils.data.DataLoader(
            ds, batch_size=2, num_workers=2, multiprocessing_context=mp.get_context("fork"), timeout=60
        )
        got = [item for batch in loader for item in batch]
    finally:
        numba.set_num_threads(before)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


@pytest.mark.parametrize("snip", [True, False])
def test_torch_module_rejects_lengths_beyond_the_waveforms(snip):
    """As fbank_batch does: a length past the padded batch has no samples to frame (snip_edges=False read the
    last sample over and over instead)."""
    with pytest.raises(ValueError, match="do not fit waveforms of shape"):
        Fbank(snip_edges=snip)(torch.randn(2, 3000), torch.tensor([5000, 3000]))
