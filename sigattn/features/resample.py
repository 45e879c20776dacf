"""Polyphase rational resampling equal to ``scipy.signal.resample_poly`` (default Kaiser(5.0) window, zero padding).

Output sample m of an up/down resampling is ``y[m] = sum_k x[k] h[m*down + half_len - k*up]`` with the
anti-aliasing low-pass ``h = up * firwin(2*half_len + 1, 1/max(up, down), window=("kaiser", 5.0))`` and
``half_len = 10 max(up, down)`` (P. P. Vaidyanathan, "Multirate Systems and Filter Banks", 1993). The
Numba kernel evaluates only the non-zero polyphase taps, ``prange`` over rows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._core import KERNEL_LOCK, as_float_array

__all__ = ["resample_poly"]


@njit(cache=True, parallel=True)
def _polyphase_kernel(x, h, up, down, half_len, out):
    n_rows, n = x.shape
    n_out = out.shape[1]
    n_h = h.shape[0]
    for r in prange(n_rows):
        for m in range(n_out):
            c = m * down + half_len  # h index for k = 0 is c; decreasing by up per input sample
            k_lo = max(0, (c - (n_h - 1) + up - 1) // up)
            k_hi = min(n - 1, c // up)
            acc = 0.0
            for k in range(k_lo, k_hi + 1):
                acc += x[r, k] * h[c - k * up]
            out[r, m] = acc


def resample_poly(
    x: np.ndarray, up: int, down: int, axis: int = -1, window: str | tuple = ("kaiser", 5.0)
) -> np.ndarray:
    """Resample by ``up / down`` along ``axis`` with a polyphase FIR, like ``scipy.signal.resample_poly``.

    Args:
        x: float32/float64 array (1-D to 3-D).
        up: upsampling factor, a positive integer (``up / down`` is reduced by the gcd).
        down: downsampling factor, a positive integer.
        axis: axis to resample.
        window: ``scipy.signal.firwin`` window of the anti-aliasing filter.

    Returns:
        Array with ``ceil(n * up / down)`` samples on ``axis``, input dtype.

    Example:
        >>> import numpy as np
        >>> resample_poly(np.ones((2, 160)), 25, 16).shape
        (2, 250)
    """
    from scipy import signal

    arr = as_float_array(x, "x", ndims=(1, 2, 3))
    for name, v in (("up", up), ("down", down)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    g = math.gcd(int(up), int(down))
    up, down = int(up) // g, int(down) // g
    moved = np.moveaxis(arr, axis, -1)
    if up == down == 1:
        return arr.copy()
    n = moved.shape[-1]
    n_out = n * up // down + bool(n * up % down)
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=window) * up
    rows = np.ascontiguousarray(moved).reshape(-1, n)
    out = np.empty((rows.shape[0], n_out), dtype=np.float64)
    with KERNEL_LOCK:
        _polyphase_kernel(rows, h, up, down, half_len, out)
    out = out.reshape(moved.shape[:-1] + (n_out,)).astype(arr.dtype, copy=False)
    return np.moveaxis(out, -1, axis)
