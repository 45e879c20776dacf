"""Kaldi-compatible log-mel filterbank features as Numba kernels.

Semantics and defaults follow Kaldi's ``compute-fbank-feats`` as ported by ``torchaudio.compliance.kaldi.fbank``
(D. Povey et al., "The Kaldi Speech Recognition Toolkit", ASRU 2011), except ``num_mel_bins=80``. The pipeline
per frame is: dither, DC removal, raw log-energy, pre-emphasis, window, zero-pad to a power of two, real FFT,
power spectrum, sparse triangular mel banks (linear in mel, Nyquist bin weight 0), log.

Power-of-two FFT sizes (the default ``round_to_power_of_two``, from 32 to 2048 padded samples: 25 ms frames
at 8 to 48 kHz) run one fused Numba kernel (:mod:`._lanes`): 16 frames at a time, SIMD across frames, from the
waveform to the mel energies, with its own radix-4 FFT, in chunks of up to 4096 frames (numpy's SIMD log runs on each
chunk while it is in cache; chunks are spread over ``numba.get_num_threads()`` Python threads, with results
identical for any count). Framing is float64; the FFT, power and mel sums run in the output dtype (float32, or
float64 with ``dtype="float64"``, an oracle mode). The torch module :class:`~sigattn.features.Fbank` runs the
same FFT with the same operations in the same order, so both give the same spectrum bit for bit. Other sizes run
the block path: a framing kernel, ``torch.fft.rfft`` on blocks of 256 frames, a mel kernel, serially. Both paths
sum the samples they read, so NaN/Inf input is found without a separate pass (samples no frame reads are checked
apart).

Input scale: Kaldi assumes int16-scale samples (|x| <= 32768), torchaudio and kaldi-native-fbank take what
they are given. Features of a waveform in [-1, 1] equal those of the int16-scaled waveform minus
2 ln(32768) = 20.7944 in every log-mel bin (exact at ``dither=0``; with dither the noise is not rescaled).
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import inspect
import math
import os
import warnings

import numba
import numpy as np
import torch
from numba import njit

from ._core import KERNEL_LOCK, as_float_array, check_finite, thread_pool, torch_threads
from ._lanes_plan import FAST_N, LANES, lane_plan

__all__ = ["FLT_EPSILON", "fbank", "fbank_batch", "frame_params", "mel_banks", "window_function"]

FLT_EPSILON = 1.1920928955078125e-07
CHUNK_FRAMES = 256  # frames per block (FFT input 512 KiB): 2-6% faster than 512 in the benchmark sweep
LANES_CHUNK = 256  # 16-frame groups per lanes-kernel call (4096 frames): the log runs per chunk, in L2
WINDOWS = ("povey", "hanning", "hamming", "rectangular", "blackman")
LANES_ENV = "SIGATTN_FBANK_LANES"  # "0" (or false/off/no) forces the block path

# The lanes kernel is built on Numba/llvmlite internals (an extension type and LLVM intrinsics), so it is fenced:
# imported at the first dispatch, not with this module, and any failure to import or compile it switches this
# process to the block path with one warning. Errors of the kind a compiler or an API change raises count as
# such failures; the block path then recomputes the whole call (every output element is rewritten).
try:
    from numba.core.errors import NumbaError as _NumbaError
except ImportError:  # a Numba that moved it must not break importing sigattn.features
    _NumbaError = RuntimeError
_LANES_FAILURES = (ImportError, AttributeError, TypeError, NotImplementedError, RuntimeError, LookupError,
                   _NumbaError)  # fmt: skip
_lanes_state: dict = {"module": None, "failed": None}


def lanes_enabled() -> bool:
    """Whether power-of-two FFT sizes use the fused lanes kernel in this process: False when
    ``$SIGATTN_FBANK_LANES`` is 0/false/off/no, or after the kernel failed to import or compile here."""
    if os.environ.get(LANES_ENV, "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    return _lanes_state["failed"] is None


def _lanes_module():
    """The :mod:`._lanes` module, imported on first use (None after a failure)."""
    if _lanes_state["module"] is None and _lanes_state["failed"] is None:
        try:
            _lanes_state["module"] = importlib.import_module(f"{__package__}._lanes")
        except Exception as e:  # noqa: BLE001 - any import failure of the fenced kernel means: fall back
            _lanes_disable(e)
    return _lanes_state["module"]


def _lanes_disable(error: BaseException) -> None:
    _lanes_state["failed"] = (
        f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    )
    warnings.warn(
        f"sigattn fbank: the fused lanes kernel is unavailable with numba {numba.__version__} "
        f"({_lanes_state['failed']}); using the block path (same features to float32 FFT precision, "
        f"about 2x slower). Set {LANES_ENV}=0 to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )


def frame_params(sample_rate: float, frame_length: float, frame_shift: float, round_to_power_of_two: bool):
    """``(window_size, window_shift, padded_size)`` in samples, as Kaldi computes them."""
    size = int(sample_rate * frame_length * 0.001)
    shift = int(sample_rate * frame_shift * 0.001)
    if size < 2 or shift < 1:
        raise ValueError(
            f"frame_length={frame_length} ms / frame_shift={frame_shift} ms at {sample_rate} Hz give "
            f"{size} / {shift} samples; need at least 2 / 1"
        )
    padded = 1 << (size - 1).bit_length() if round_to_power_of_two else size
    return size, shift, padded


def num_frames(n: int, size: int, shift: int, snip_edges: bool) -> int:
    """Number of frames Kaldi extracts from ``n`` samples."""
    if snip_edges:
        return 0 if n < size else 1 + (n - size) // shift
    return (n + shift // 2) // shift


def window_function(window_type: str, size: int, blackman_coeff: float = 0.42) -> np.ndarray:
    """Kaldi's analysis window of ``size`` samples (symmetric), float64."""
    if window_type not in WINDOWS:
        raise ValueError(f"window_type must be one of {WINDOWS}, got {window_type!r}")
    a = 2 * math.pi / (size - 1)
    i = np.arange(size, dtype=np.float64)
    if window_type == "rectangular":
        return np.ones(size)
    if window_type == "hamming":
        return 0.54 - 0.46 * np.cos(a * i)
    if window_type == "blackman":
        return blackman_coeff - 0.5 * np.cos(a * i) + (0.5 - blackman_coeff) * np.cos(2 * a * i)
    hann = 0.5 - 0.5 * np.cos(a * i)
    return hann**0.85 if window_type == "povey" else hann


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_banks(
    num_bins: int, padded_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> np.ndarray:
    """Dense Kaldi mel weights ``(num_bins, padded_size // 2 + 1)`` float64 (last column, Nyquist, is 0).

    ``high_freq <= 0`` is an offset from Nyquist. Triangles are linear in mel, ``mel(f) = 1127 ln(1 + f/700)``.
    """
    nyquist = 0.5 * sample_rate
    high = high_freq + nyquist if high_freq <= 0.0 else high_freq
    if not (0.0 <= low_freq < nyquist) or not (0.0 < high <= nyquist) or not (low_freq < high):
        raise ValueError(
            f"mel band edges low_freq={low_freq}, high_freq={high_freq} (-> {high}) must satisfy "
            f"0 <= low < high <= Nyquist={nyquist}"
        )
    if num_bins < 3:
        raise ValueError(f"num_mel_bins must be >= 3, got {num_bins}")
    mel_low, mel_high = _mel(low_freq), _mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = np.arange(num_bins, dtype=np.float64)[:, None]
    left, centre, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = _mel(sample_rate / padded_size * np.arange(padded_size // 2))[None, :]
    w = np.maximum(0.0, np.minimum((mel - left) / (centre - left), (right - mel) / (right - centre)))
    return np.concatenate([w, np.zeros((num_bins, 1))], axis=1)


# reassociation lets LLVM vectorise the sums; no NaN/Inf tests happen inside these kernels (inputs are checked)
FAST = {"reassoc", "contract"}


@njit(cache=True, fastmath=FAST)
def _frames_range(x, starts, lengths, frame_utt, frame_idx, first_offset, shift, size, noise, dither, remove_dc,
                  preemph, window, raw_energy, need_energy, out, energy, f_begin, f_end):  # fmt: skip
    """Frames [f_begin, f_end) into FFT-input rows: DC removal, pre-emphasis, window (serial). Columns from
    ``size`` on are not written: the caller zeroes the padding once. Returns the sum of every frame's samples,
    non-finite when a sample read is NaN or Inf (the input check, fused into the read).

    Arithmetic is float64 (float32 pre-emphasis cancels ~5 bits and costs ~1e-4 in the lowest mel bins); the
    rows are stored in the output dtype. Serial code called per range vectorises (a prange body did not).
    """
    buf = np.empty(size, dtype=x.dtype)
    total = 0.0
    for f in range(f_begin, f_end):
        u = frame_utt[f]
        s0 = starts[u]
        n = lengths[u]
        row = out[f]
        begin = frame_idx[f] * shift + first_offset
        if dither == 0.0 and begin >= 0 and begin + size <= n:
            xs = x[s0 + begin : s0 + begin + size]  # common case: no copy
        else:
            for i in range(size):
                j = begin + i
                # Kaldi reflection without edge repeat: -1 -> 0, -2 -> 1, n -> n - 1.
                while j < 0 or j >= n:
                    j = -j - 1 if j < 0 else 2 * n - 1 - j
                buf[i] = x[s0 + j]
            if dither != 0.0:
                nz = noise[f]
                for i in range(size):
                    buf[i] += dither * nz[i]
            xs = buf
        mean = 0.0
        for i in range(size):
            mean += xs[i]
        total += mean
        mean = mean / size if remove_dc else 0.0
        if need_energy and raw_energy:
            e = 0.0
            for i in range(size):
                v = xs[i] - mean
                e += v * v
            energy[f] = e
        # DC removal, pre-emphasis from the end (x[i] -= c x[i-1]; x[0] -= c x[0]) and window, fused:
        # (x[i] - m) - c (x[i-1] - m) = x[i] - c x[i-1] - m (1 - c)
        cm = mean * (1.0 - preemph)
        for i in range(1, size):
            row[i] = (xs[i] - preemph * xs[i - 1] - cm) * window[i]
        row[0] = (xs[0] - mean) * (1.0 - preemph) * window[0]
        if need_energy and not raw_energy:
            e = 0.0
            for i in range(size):
                e += np.float64(row[i]) * row[i]
            energy[f] = e
    return total


# Kaldi triangles share edges: between centres c_{j-1} and c_j (segment j of the FFT bins, contiguous since the
# bins are sorted by frequency), bin k falls in mel j-1 with weight 1 - u_k and rises in mel j with weight u_k.
# One pass over the bins accumulates per segment the total power t and the u-weighted power u; then
# mel[m] = u(segment m) + t(segment m + 1) - u(segment m + 1). Eight frames are summed side by side: one frame's
# sums are a chain of dependent adds (latency bound, ~4 cycles a bin); eight independent chains fill the FMA units.
@njit(cache=True, fastmath=FAST)
def _mel_range(spec_ri, lo, seg_start, up_w, use_power, zero, eps, dst, f_begin, f_end):
    """Mel sums of frames [f_begin, f_end) into ``dst`` rows (``spec_ri``: the spectrum as interleaved re, im)."""
    n_seg = seg_start.shape[0] - 1
    last = f_end - 1
    for g in range(f_begin, f_end, 8):
        r0 = spec_ri[min(g + 0, last)]
        r1 = spec_ri[min(g + 1, last)]
        r2 = spec_ri[min(g + 2, last)]
        r3 = spec_ri[min(g + 3, last)]
        r4 = spec_ri[min(g + 4, last)]
        r5 = spec_ri[min(g + 5, last)]
        r6 = spec_ri[min(g + 6, last)]
        r7 = spec_ri[min(g + 7, last)]
        d0 = dst[min(g + 0, last)]
        d1 = dst[min(g + 1, last)]
        d2 = dst[min(g + 2, last)]
        d3 = dst[min(g + 3, last)]
        d4 = dst[min(g + 4, last)]
        d5 = dst[min(g + 5, last)]
        d6 = dst[min(g + 6, last)]
        d7 = dst[min(g + 7, last)]
        pu0 = zero
        pu1 = zero
        pu2 = zero
        pu3 = zero
        pu4 = zero
        pu5 = zero
        pu6 = zero
        pu7 = zero
        for j in range(n_seg):
            t0 = zero
            t1 = zero
            t2 = zero
            t3 = zero
            t4 = zero
            t5 = zero
            t6 = zero
            t7 = zero
            u0 = zero
            u1 = zero
            u2 = zero
            u3 = zero
            u4 = zero
            u5 = zero
            u6 = zero
            u7 = zero
            for k in range(seg_start[j], seg_start[j + 1]):
                i = 2 * (k + lo)
                w = up_w[k]
                p0 = r0[i] * r0[i] + r0[i + 1] * r0[i + 1]
                p1 = r1[i] * r1[i] + r1[i + 1] * r1[i + 1]
                p2 = r2[i] * r2[i] + r2[i + 1] * r2[i + 1]
                p3 = r3[i] * r3[i] + r3[i + 1] * r3[i + 1]
                p4 = r4[i] * r4[i] + r4[i + 1] * r4[i + 1]
                p5 = r5[i] * r5[i] + r5[i + 1] * r5[i + 1]
                p6 = r6[i] * r6[i] + r6[i + 1] * r6[i + 1]
                p7 = r7[i] * r7[i] + r7[i + 1] * r7[i + 1]
                if not use_power:
                    p0 = math.sqrt(p0)
                    p1 = math.sqrt(p1)
                    p2 = math.sqrt(p2)
                    p3 = math.sqrt(p3)
                    p4 = math.sqrt(p4)
                    p5 = math.sqrt(p5)
                    p6 = math.sqrt(p6)
                    p7 = math.sqrt(p7)
                t0 += p0
                t1 += p1
                t2 += p2
                t3 += p3
                t4 += p4
                t5 += p5
                t6 += p6
                t7 += p7
                u0 += w * p0
                u1 += w * p1
                u2 += w * p2
                u3 += w * p3
                u4 += w * p4
                u5 += w * p5
                u6 += w * p6
                u7 += w * p7
            if j > 0:
                d0[j - 1] = max(pu0 + t0 - u0, eps)
                d1[j - 1] = max(pu1 + t1 - u1, eps)
                d2[j - 1] = max(pu2 + t2 - u2, eps)
                d3[j - 1] = max(pu3 + t3 - u3, eps)
                d4[j - 1] = max(pu4 + t4 - u4, eps)
                d5[j - 1] = max(pu5 + t5 - u5, eps)
                d6[j - 1] = max(pu6 + t6 - u6, eps)
                d7[j - 1] = max(pu7 + t7 - u7, eps)
            pu0 = u0
            pu1 = u1
            pu2 = u2
            pu3 = u3
            pu4 = u4
            pu5 = u5
            pu6 = u6
            pu7 = u7


@njit(cache=True)
def _scatter_range(mel, energy, energy_col, energy_min, use_log, col0, bins_first, frame_utt, frame_idx, out,
                   f_begin, f_end):  # fmt: skip
    """Copy mel rows (and the energy column) of frames [f_begin, f_end) to their utterance's output slots."""
    nb = mel.shape[1]
    for f in range(f_begin, f_end):
        b = frame_utt[f]
        t = frame_idx[f]
        res = out[b, :, t] if bins_first else out[b, t, :]
        src = mel[f]
        for m in range(nb):
            res[col0 + m] = src[m]
        if energy_col >= 0:
            e = max(energy[f], energy_min)
            res[energy_col] = e if use_log else math.log(e)


def _segments(num_bins: int, padded: int, sample_rate: float, low_freq: float, high_freq: float):
    """Per FFT bin in [lo, hi): its triangle segment and weights (rising, falling, u; as :func:`mel_banks`)."""
    dense = mel_banks(num_bins, padded, sample_rate, low_freq, high_freq)  # validates the edges
    high = high_freq + 0.5 * sample_rate if high_freq <= 0.0 else high_freq
    mel_low, mel_high = _mel(low_freq), _mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    mel = _mel(sample_rate / padded * np.arange(padded // 2))
    pos = (mel - mel_low) / delta
    inside = (mel > mel_low) & (mel < mel_high)
    nz = np.flatnonzero(inside)
    if nz.size == 0:
        raise ValueError(
            f"no FFT bin lies between low_freq={low_freq} and high_freq={high_freq} Hz "
            f"({padded}-point FFT at {sample_rate} Hz)"
        )
    lo, hi = int(nz[0]), int(nz[-1]) + 1
    seg = np.clip(np.floor(pos[lo:hi]).astype(np.int64), 0, num_bins)
    assert dense[:, hi:].max(initial=0.0) == 0.0 and dense[:, :lo].max(initial=0.0) == 0.0
    # rows: rising into mel `seg` and falling into mel `seg - 1`, read from the dense banks (the sparse sums
    # then use the very numbers of the torch module's dense matrix), and u = the rising weight extended past
    # the last centre (the blocks kernel takes the falling weight as 1 - u)
    k = np.arange(lo, hi)
    up = np.where(seg < num_bins, dense[np.minimum(seg, num_bins - 1), k], 0.0)
    down = np.where(seg >= 1, dense[np.maximum(seg - 1, 0), k], 0.0)
    u = pos[lo:hi] - seg
    assert np.allclose(up[seg < num_bins], u[seg < num_bins]) and np.allclose(
        down[seg >= 1], 1.0 - u[seg >= 1]
    )
    return lo, hi, seg, np.stack([up, down, u])


@functools.lru_cache(maxsize=32)
def _design(sample_rate, frame_length, frame_shift, round_to_power_of_two, window_type, blackman_coeff,
            num_mel_bins, low_freq, high_freq):  # fmt: skip
    size, shift, padded = frame_params(sample_rate, frame_length, frame_shift, round_to_power_of_two)
    window = window_function(window_type, size, blackman_coeff)
    lo, hi, seg, w = _segments(num_mel_bins, padded, sample_rate, low_freq, high_freq)
    assert (np.diff(seg) >= 0).all()  # bins sorted by frequency: each segment is a contiguous run of bins
    seg_start = np.searchsorted(seg, np.arange(num_mel_bins + 2)).astype(np.int64)
    weights = {"float32": w.astype(np.float32), "float64": w}  # (3, bins): rising, falling, u
    for arr in (window, seg_start, *weights.values()):
        arr.setflags(write=False)
    return size, shift, padded, window, lo, seg_start, weights


def _check_waveform(w: object, name: str) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        raise TypeError(
            f"{name} must be a numpy ndarray (use sigattn.features.Fbank for tensors), got a Tensor"
        )
    return as_float_array(w, name, ndims=(1,), allow_int16=True, finite=False)


@functools.lru_cache(maxsize=32)
def _lane_tables(size: int, shift: int, padded: int):
    """Per-design tables of the lanes kernel: sample -> tile offset, sample -> block offset, twiddles."""
    n = padded // 2
    order, tw = lane_plan(n)
    row = np.empty(n, dtype=np.int64)
    row[order] = np.arange(n)
    i = np.arange(padded)
    pos = row[i // 2] * 2 * LANES + (i % 2) * LANES  # z[m] = x[2m] + i x[2m + 1]
    ncol = LANES + (size - 1) // shift
    i = np.arange(size)
    boff = (i % shift) * ncol + i // shift
    k = np.arange(n + 1)
    ptw = np.stack([np.cos(-np.pi * k / n), np.sin(-np.pi * k / n)], axis=1)
    tables = {
        "pos": pos,
        "boff": boff,
        "float64": (tw, ptw),
        "float32": (tw.astype(np.float32), ptw.astype(np.float32)),
    }
    for a in (pos, boff, *tables["float32"]):
        a.setflags(write=False)
    return tables


class DitherNoise:
    """Gaussian dither noise: ``noise(f0, f1)`` is ``(frame size, f1 - f0)``, column ``j`` for global frame ``f0 + j``
    (frames numbered across the items of a batch). Made in blocks of 2048 frames, each from its own generator
    (``numpy.random.default_rng`` seeded with ``seed`` and the block index), so a frame's noise does not depend
    on how the frames are split into chunks or threads, and only a chunk's noise is in memory (one array of the
    whole noise was 1.15 GB for an hour of 16 kHz audio)."""

    BLOCK = 2048

    def __init__(self, seed: int | None, size: int) -> None:
        self.entropy = np.random.SeedSequence(seed).entropy
        self.size = size

    def block(self, b: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(b,)))
        return rng.standard_normal((self.size, self.BLOCK))

    def __call__(self, f0: int, f1: int) -> np.ndarray:
        out = np.empty((self.size, f1 - f0))
        for b in range(f0 // self.BLOCK, (f1 - 1) // self.BLOCK + 1):
            lo, hi = max(f0, b * self.BLOCK), min(f1, (b + 1) * self.BLOCK)
            out[:, lo - f0 : hi - f0] = self.block(b)[:, lo - b * self.BLOCK : hi - b * self.BLOCK]
        return out


def _mel_view(out, u, f_begin, f_end, col0, num_bins, bins_first):
    return (
        out[u, col0 : col0 + num_bins, f_begin:f_end]
        if bins_first
        else out[u, f_begin:f_end, col0 : col0 + num_bins]
    )


def _run_lanes(flat, starts, lens, frames, first_offset, shift, size, padded, noise, dither, remove_dc, preemph,
               window, raw_energy, need_energy, lo, seg_start, up_w, use_power, eps, out, bins_first, col0,
               energy_col, energy_min, use_log):  # fmt: skip
    """Power-of-two FFT sizes: the fused kernel of :mod:`._lanes`, in chunks of LANES_CHUNK groups (log per
    chunk while it is in cache), chunks spread over ``numba.get_num_threads()`` Python threads."""
    kernel = _lanes_module()
    if kernel is None:
        raise ImportError(_lanes_state["failed"])
    tables = _lane_tables(size, shift, padded)
    tw, ptw = tables["float32" if out.dtype == np.float32 else "float64"]
    num_bins = seg_start.shape[0] - 2
    n_threads = numba.get_num_threads()
    n_groups = sum(-(-int(nf) // LANES) for nf in frames)
    # chunks of at most LANES_CHUNK groups, sized so that each thread gets the same number of groups (at least
    # 4 groups a chunk: 64 frames)
    rounds = -(-n_groups // (n_threads * LANES_CHUNK))
    per_chunk = max(4, -(-n_groups // (n_threads * rounds)))
    g_utt, g_f0, chunks = [], [], []
    for u, nf in enumerate(frames):
        f0s = list(range(0, int(nf), LANES))
        for c in range(0, len(f0s), per_chunk):
            g = len(g_utt) + c
            g_end = g + len(f0s[c : c + per_chunk])
            chunks.append((u, g, g_end, f0s[c], min(int(nf), f0s[c] + LANES * per_chunk)))
        g_utt += [u] * len(f0s)
        g_f0 += f0s
    g_utt = np.array(g_utt, dtype=np.int64)
    g_f0 = np.array(g_f0, dtype=np.int64)
    frame_base = np.zeros(len(frames), dtype=np.int64)
    frame_base[1:] = np.cumsum(frames)[:-1]
    ncol = LANES + (size - 1) // shift

    flat_out = out.reshape(-1)
    out_shape = np.array(out.shape, dtype=np.int64)
    no_noise = np.zeros(1)

    def run(part):
        block = np.empty(shift * ncol, dtype=flat.dtype)
        melbuf = np.empty(LANES * num_bins, dtype=out.dtype)
        tile = np.empty(padded * LANES, dtype=out.dtype)
        total = 0.0
        for u, g_begin, g_end, f_begin, f_end in part:
            # the chunk's noise, all 16 lanes of its last group included; columns from the chunk's first frame
            f0 = int(frame_base[u]) + f_begin
            width = (g_end - g_begin) * LANES
            chunk_noise = noise(f0, f0 + width).reshape(-1) if noise is not None else no_noise
            total += kernel.fbank_groups(
                flat, starts, lens, g_utt, g_f0, frames, frame_base - f0, first_offset, shift, size, padded // 2,
                chunk_noise, width, dither, remove_dc, preemph, window, raw_energy, need_energy,
                tables["pos"], tables["boff"], tw, ptw, lo, seg_start, up_w, use_power, eps, flat_out, out_shape,
                bins_first, col0, energy_col, energy_min, block, melbuf, tile, g_begin, g_end,
            )  # fmt: skip
            if use_log:
                view = _mel_view(out, u, f_begin, f_end, col0, num_bins, bins_first)
                np.log(view, out=view)  # numpy's SIMD log, on rows still in cache
        return total

    n_threads = min(n_threads, len(chunks))
    if n_threads <= 1:
        return run(chunks)
    # contiguous parts with about the same number of groups, one per thread (the kernel releases the GIL; numpy's
    # log too)
    ends = np.cumsum([g_end - g_begin for _, g_begin, g_end, _, _ in chunks])
    targets = ends[-1] * np.arange(1, n_threads) / n_threads
    cuts = [int(np.abs(ends - target).argmin()) + 1 for target in targets]
    bounds = [0, *cuts, len(chunks)]
    parts = [chunks[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    # the calling thread takes the first part itself (one thread hand-off fewer)
    pool = thread_pool(numba.get_num_threads())  # the size the FIR kernels use (one pool, never rebuilt)
    futures = [pool.submit(run, part) for part in parts[1:]]
    try:
        total = run(parts[0])
    finally:
        # every part has stopped writing into `out` before this returns or raises (a fallback to the block path
        # must not race with a pool thread still running the kernel)
        concurrent.futures.wait(futures)
    return total + sum(f.result() for f in futures)


def _run_blocks(flat, starts, lens, frames, first_offset, shift, size, padded, noise, dither, remove_dc, preemph,
                window, raw_energy, need_energy, lo, seg_start, up_w, use_power, eps, out, bins_first, col0,
                energy_col, energy_min, use_log):  # fmt: skip
    """Other FFT sizes: framing kernel, ``torch.fft.rfft`` per block of CHUNK_FRAMES frames, mel kernel."""
    ftype = out.dtype.type
    total = int(frames.sum())
    frame_utt = np.repeat(np.arange(len(frames), dtype=np.int64), frames)
    frame_idx = np.concatenate([np.arange(nf, dtype=np.int64) for nf in frames])
    energy = np.empty(total, dtype=np.float64)
    num_bins = seg_start.shape[0] - 2
    # Blocks of frames keep the frame matrix and its spectrum in cache (and avoid fresh pages per call). The
    # zero padding of the FFT input is written once here; the framing kernel writes the first `size` columns.
    chunk = min(total, CHUNK_FRAMES)
    buf = np.zeros((chunk, padded), dtype=ftype)
    mel = np.empty((chunk, num_bins), dtype=ftype)
    zero = ftype(0.0)
    direct = len(frames) == 1 and not bins_first and energy_col < 0
    no_noise = np.zeros((1, 1))
    checksum = 0.0
    # Serial, the FFT on one torch thread: waking worker threads for each ~0.4 ms block cost more than it saved.
    with KERNEL_LOCK, torch_threads(1):
        for c0 in range(0, total, chunk):
            c1 = min(total, c0 + chunk)
            fb = buf[: c1 - c0]
            fu, fi = frame_utt[c0:c1], frame_idx[c0:c1]
            checksum += _frames_range(flat, starts, lens, fu, fi, first_offset, shift, size,
                                      noise(c0, c1).T if noise is not None else no_noise, dither, remove_dc, preemph,
                                      window, raw_energy, need_energy, fb, energy[c0:c1], 0, c1 - c0)  # fmt: skip
            # a fresh output tensor: rfft(out=...) copies through a temporary and is ~1.5x slower
            spec_ri = torch.fft.rfft(torch.from_numpy(fb), dim=-1).numpy().view(ftype)
            dst = out[0, c0:c1] if direct else mel[: c1 - c0]
            _mel_range(spec_ri, lo, seg_start, up_w[2], use_power, zero, eps, dst, 0, c1 - c0)
            if use_log:
                np.log(dst, out=dst)  # numpy's SIMD log, on rows still in cache
            if not direct:
                # the energy column is always a log energy (Kaldi), floored at energy_floor
                _scatter_range(dst, energy[c0:c1], energy_col, energy_min, False, col0,
                               bins_first, fu, fi, out, 0, c1 - c0)  # fmt: skip
    return checksum


def _run(waves, names, sample_rate, num_mel_bins, frame_length, frame_shift, dither, preemphasis_coefficient,
         remove_dc_offset, window_type, blackman_coeff, round_to_power_of_two, snip_edges, low_freq, high_freq,
         energy_floor, raw_energy, use_energy, htk_compat, use_log_fbank, use_power, subtract_mean, seed,
         dtype, bins_first):  # fmt: skip
    """Features of ``waves`` (validated except for NaN/Inf, which the framing kernel checks as it reads)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dither < 0:
        raise ValueError(f"dither must be >= 0, got {dither}")
    size, shift, padded, window, lo, seg_start, weights = _design(
        float(sample_rate), float(frame_length), float(frame_shift), bool(round_to_power_of_two), window_type,
        float(blackman_coeff), int(num_mel_bins), float(low_freq), float(high_freq),
    )  # fmt: skip
    lens = np.array([w.shape[0] for w in waves], dtype=np.int64)
    frames = np.array([num_frames(int(n), size, shift, snip_edges) for n in lens], dtype=np.int64)
    for i, (n, nf) in enumerate(zip(lens, frames)):
        if nf == 0:
            raise ValueError(
                f"waveform {i} has {n} samples, shorter than one frame ({size} samples = {frame_length} ms "
                f"at {sample_rate} Hz)"
            )
    starts = np.zeros(len(waves), dtype=np.int64)
    starts[1:] = np.cumsum(lens)[:-1]
    flat = np.concatenate(waves) if len(waves) > 1 else waves[0]
    first_offset = 0 if snip_edges else shift // 2 - size // 2
    noise = DitherNoise(seed, size) if dither > 0 else None
    ftype = np.float32 if dtype == "float32" else np.float64
    n_out = num_mel_bins + (1 if use_energy else 0)
    energy_col = (num_mel_bins if htk_compat else 0) if use_energy else -1
    energy_min = max(FLT_EPSILON, energy_floor)
    t_max = int(frames.max())
    shape = (len(waves), n_out, t_max) if bins_first else (len(waves), t_max, n_out)
    # one waveform: every element is written (no memset); a batch keeps zeros after each item's frames
    out = np.empty(shape, dtype=ftype) if len(waves) == 1 else np.zeros(shape, dtype=ftype)
    eps = ftype(FLT_EPSILON) if use_log_fbank else ftype(-np.inf)
    col0 = 1 if energy_col == 0 else 0
    args = (flat, starts, lens, frames, first_offset, shift, size, padded, noise, float(dither), bool(remove_dc_offset),
            float(preemphasis_coefficient), window, bool(raw_energy), bool(use_energy), lo, seg_start, weights[dtype],
            bool(use_power), eps, out, bool(bins_first), col0, energy_col, energy_min, bool(use_log_fbank))  # fmt: skip
    checksum = None
    if padded & (padded - 1) == 0 and padded // 2 in FAST_N and lanes_enabled():
        try:
            checksum = _run_lanes(*args)
        except _LANES_FAILURES as e:
            if _lanes_state["failed"] is None:
                _lanes_disable(e)
            if len(waves) > 1:
                out.fill(0)  # a batch keeps zeros after each item's frames
    if checksum is None:
        checksum = _run_blocks(*args)
    if not math.isfinite(checksum):
        for w, name in zip(waves, names):
            check_finite(w, name)  # raises, naming the first NaN/Inf
    # samples no frame reads are checked on their own: after the last frame, and all of them when frames leave
    # gaps (frame_shift > frame_length; then centred frames also skip the first samples)
    for w, name, nf in zip(waves, names, frames):
        tail = w if shift > size else w[max((int(nf) - 1) * shift + first_offset + size, 0) :]
        if tail.size and not np.isfinite(tail).all():
            check_finite(w, name)
    if subtract_mean:
        for b, nf in enumerate(frames):
            item = out[b, :, :nf] if bins_first else out[b, :nf]
            item -= item.mean(axis=-1 if bins_first else 0, keepdims=True)
    return out, frames


def fbank(
    waveform: np.ndarray,
    sample_rate: float = 16000,
    num_mel_bins: int = 80,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    dither: float = 0.0,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    window_type: str = "povey",
    blackman_coeff: float = 0.42,
    round_to_power_of_two: bool = True,
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    energy_floor: float = 1.0,
    raw_energy: bool = True,
    use_energy: bool = False,
    htk_compat: bool = False,
    use_log_fbank: bool = True,
    use_power: bool = True,
    subtract_mean: bool = False,
    seed: int | None = None,
    dtype: str = "float32",
) -> np.ndarray:
    """Kaldi log-mel filterbank of one waveform, like ``torchaudio.compliance.kaldi.fbank`` (80 bins).

    Args:
        waveform: 1-D float32/float64 array (any scale; int16 arrays are accepted and keep their scale).
            [-1, 1] input gives features 2 ln(32768) = 20.79 lower than int16-scale input (at ``dither=0``).
        sample_rate: Hz.
        num_mel_bins: number of triangular mel bins.
        frame_length: milliseconds (25 -> 400 samples at 16 kHz).
        frame_shift: milliseconds (10 -> 160 samples at 16 kHz).
        dither: std of Gaussian noise added per frame (in input units); 0 disables it.
        preemphasis_coefficient: pre-emphasis ``x[i] -= c x[i-1]``.
        remove_dc_offset: subtract each frame's mean.
        window_type: "povey", "hanning", "hamming", "rectangular" or "blackman".
        blackman_coeff: the Blackman window's coefficient.
        round_to_power_of_two: zero-pad frames to the next power of two for the FFT.
        snip_edges: frames only where they fit (Kaldi default); else centred frames with reflection.
        low_freq: lowest mel edge in Hz.
        high_freq: highest mel edge in Hz; ``<= 0`` is an offset from Nyquist.
        energy_floor: floor of the log-energy column (``use_energy``), as ``log(energy_floor)``.
        raw_energy: energy before pre-emphasis and window.
        use_energy: add a log-energy column (first, or last with ``htk_compat``).
        htk_compat: put the energy column last.
        use_log_fbank: log of the mel energies (floored at FLT_EPSILON).
        use_power: power spectrum (else magnitude).
        subtract_mean: subtract the per-utterance mean of each column.
        seed: seed of the dither noise (:class:`DitherNoise`: per block of 2048 frames, whatever the threads).
        dtype: "float32" (default) or "float64" (FFT in double; an oracle mode).

    Returns:
        ``(frames, num_mel_bins (+1 with use_energy))`` array of ``dtype``.

    Example:
        >>> import numpy as np
        >>> fbank(np.random.default_rng(0).standard_normal(16000).astype(np.float32)).shape
        (98, 80)
    """
    w = _check_waveform(waveform, "waveform")
    out, _ = _run([w], ["waveform"], sample_rate, num_mel_bins, frame_length, frame_shift, dither, preemphasis_coefficient,
                  remove_dc_offset, window_type, blackman_coeff, round_to_power_of_two, snip_edges, low_freq,
                  high_freq, energy_floor, raw_energy, use_energy, htk_compat, use_log_fbank, use_power,
                  subtract_mean, seed, dtype, bins_first=False)  # fmt: skip
    return out[0]


def fbank_batch(
    waveforms: np.ndarray | list[np.ndarray],
    lengths: np.ndarray | list[int] | None = None,
    **kwargs: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Kaldi fbank of a batch of waveforms of different lengths, in the house layout ``(B, bins, T)``.

    Args:
        waveforms: ``(B, n)`` array (with ``lengths`` giving each item's valid samples) or a list of 1-D arrays.
        lengths: valid samples per row of a 2-D ``waveforms``; ``None`` means all ``n``.
        **kwargs: the keyword arguments of :func:`fbank`. With dither, noise differs from per-item calls.

    Returns:
        ``(feats (B, bins, T_max) zero padded, frame_lengths (B,) int64)``; ``feats[b, :, :frame_lengths[b]]``
        equals ``fbank(item_b).T`` (with ``subtract_mean``, to float rounding: the mean is summed along the
        other axis).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> feats, n = fbank_batch([rng.standard_normal(16000), rng.standard_normal(8000)])
        >>> feats.shape, n.tolist()
        ((2, 80, 98), [98, 48])
    """
    if isinstance(waveforms, np.ndarray):
        if waveforms.ndim != 2:
            raise ValueError(
                f"waveforms must be a 2-D (B, n) array or a list of 1-D arrays, got shape {waveforms.shape}"
            )
        arr = _check_waveform(waveforms.reshape(-1), "waveforms").reshape(waveforms.shape)
        if lengths is None:
            lens = [arr.shape[1]] * arr.shape[0]
        else:
            lens = [int(v) for v in np.asarray(lengths).reshape(-1)]
            if len(lens) != arr.shape[0] or min(lens) < 0 or max(lens) > arr.shape[1]:
                raise ValueError(f"lengths {lens} do not fit waveforms of shape {arr.shape}")
        waves = [arr[b, : lens[b]] for b in range(arr.shape[0])]
        names = [f"waveforms[{b}]" for b in range(arr.shape[0])]
    elif isinstance(waveforms, (list, tuple)):
        if lengths is not None:
            raise ValueError("lengths must be None when waveforms is a list (each item has its own length)")
        names = [f"waveforms[{i}]" for i in range(len(waveforms))]
        waves = [_check_waveform(w, name) for w, name in zip(waveforms, names)]
    else:
        raise TypeError(
            f"waveforms must be a numpy array or a list of arrays, got {type(waveforms).__name__}"
        )
    if not waves:
        raise ValueError("waveforms is empty")
    if len({w.dtype for w in waves}) > 1:
        waves = [w.astype(np.float64) for w in waves]
    params = {k: p.default for k, p in inspect.signature(fbank).parameters.items() if k != "waveform"}
    unknown = set(kwargs) - set(params)
    if unknown:
        raise TypeError(
            f"fbank_batch got unknown keyword arguments {sorted(unknown)}; valid: {sorted(params)}"
        )
    params.update(kwargs)
    return _run(waves, names, bins_first=True, **params)
