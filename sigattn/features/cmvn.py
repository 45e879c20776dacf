"""Cepstral mean (and variance) normalisation: per utterance and Kaldi-style sliding window.

Per-utterance CMVN as in Kaldi ``apply-cmvn`` (utterance statistics) and sliding-window CMN as in Kaldi
``apply-cmvn-sliding`` (``SlidingWindowCmn``: window 600 frames, minimum 100, causal unless ``center``),
Povey et al., "The Kaldi Speech Recognition Toolkit", ASRU 2011. Layout is the house ``(..., bins, T)``;
``lengths`` gives valid frames per item of a ``(B, bins, T)`` batch, padded frames stay zero.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._core import KERNEL_LOCK, as_float_array

__all__ = ["cmvn", "sliding_cmn"]


def _prepare(feats: object, lengths: object, name: str = "feats"):
    x = as_float_array(feats, name, ndims=(2, 3))
    x3 = x[None] if x.ndim == 2 else x
    b, _, t = x3.shape
    if lengths is None:
        lens = np.full(b, t, dtype=np.int64)
    else:
        lens = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if lens.shape != (b,) or (lens < 1).any() or (lens > t).any():
            raise ValueError(
                f"lengths {lens.tolist()} do not fit {name} of shape {x.shape} (need B values in [1, T])"
            )
    return x, x3, lens


def cmvn(feats: np.ndarray, lengths: np.ndarray | None = None, norm_vars: bool = False) -> np.ndarray:
    """Per-utterance mean (and variance) normalisation over time, masked by ``lengths``.

    Args:
        feats: ``(bins, T)`` or ``(B, bins, T)`` float array.
        lengths: valid frames per item ``(B,)``; ``None`` means all ``T``.
        norm_vars: also divide by the (biased) standard deviation, floored at 1e-10 like Kaldi's 1e-20 variance.

    Returns:
        Normalised array, same shape and dtype; padded frames are zero.

    Example:
        >>> import numpy as np
        >>> y = cmvn(np.random.default_rng(0).normal(3.0, 2.0, (80, 200)), norm_vars=True)
        >>> bool(np.allclose(y.mean(-1), 0) and np.allclose(y.std(-1), 1))
        True
    """
    x, x3, lens = _prepare(feats, lengths)
    out = np.zeros_like(x3)
    for b, n in enumerate(lens):
        item = x3[b, :, :n].astype(np.float64)
        mean = item.mean(axis=-1, keepdims=True)
        y = item - mean
        if norm_vars:
            var = np.maximum((y * y).mean(axis=-1, keepdims=True), 1e-20)
            y = y / np.sqrt(var)
        out[b, :, :n] = y
    return out.reshape(x.shape)


@njit(cache=True, parallel=True)
def _sliding_kernel(x, lens, window, min_window, center, norm_vars, out):
    nb, nf, _ = x.shape
    for job in prange(nb * nf):
        b = job // nf
        f = job % nf
        n = lens[b]
        c1 = np.zeros(n + 1)
        c2 = np.zeros(n + 1)
        for t in range(n):
            v = np.float64(x[b, f, t])
            c1[t + 1] = c1[t] + v
            c2[t + 1] = c2[t] + v * v
        for t in range(n):
            if center:
                start = t - window // 2
                end = start + window
            else:
                start = t - window
                end = t + 1
            if start < 0:
                end -= start
                start = 0
            if not center and end > t:
                end = max(t + 1, min_window)
            if end > n:
                start -= end - n
                end = n
                if start < 0:
                    start = 0
            cnt = end - start
            mean = (c1[end] - c1[start]) / cnt
            y = x[b, f, t] - mean
            if norm_vars:
                var = (c2[end] - c2[start]) / cnt - mean * mean
                y = y / np.sqrt(max(var, 1e-20))
            out[b, f, t] = y


def sliding_cmn(
    feats: np.ndarray,
    lengths: np.ndarray | None = None,
    cmn_window: int = 600,
    min_cmn_window: int = 100,
    center: bool = False,
    norm_vars: bool = False,
) -> np.ndarray:
    """Kaldi sliding-window CMN (``apply-cmvn-sliding``) over the time axis of ``(..., bins, T)``.

    Frame t is normalised with the statistics of frames ``[t - cmn_window, t]`` (causal, at least
    ``min_cmn_window`` frames from the start) or of a centred window of ``cmn_window`` frames; windows are
    shifted to stay inside the utterance, as in Kaldi.

    Args:
        feats: ``(bins, T)`` or ``(B, bins, T)`` float array.
        lengths: valid frames per item; ``None`` means all ``T``.
        cmn_window: window length in frames.
        min_cmn_window: minimum frames used at the start of a causal window.
        center: centre the window on the frame instead of ending it there.
        norm_vars: also normalise the variance over the window.

    Returns:
        Normalised array, same shape and dtype; padded frames are zero.

    Example:
        >>> import numpy as np
        >>> sliding_cmn(np.ones((80, 300)), cmn_window=100).max()
        np.float64(0.0)
    """
    if cmn_window < 1 or min_cmn_window < 1:
        raise ValueError(f"cmn_window and min_cmn_window must be >= 1, got {cmn_window}, {min_cmn_window}")
    x, x3, lens = _prepare(feats, lengths)
    out = np.zeros_like(x3)
    with KERNEL_LOCK:
        _sliding_kernel(x3, lens, int(cmn_window), int(min_cmn_window), bool(center), bool(norm_vars), out)
    return out.reshape(x.shape)
