"""Sliding windows for forecasting and instance-normalisation statistics for RevIN.

Windows follow the Time-Series-Library convention (Wu et al., TimesNet, ICLR 2023): input ``x[s : s + L]``,
target ``x[s + L : s + L + H]`` for ``s = 0, stride, ...``. RevIN (Kim et al., "Reversible Instance
Normalization for Accurate Time-Series Forecasting against Distribution Shift", ICLR 2022) normalises each
instance by its mean and ``sqrt(var + eps)`` (biased variance) over time.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._core import as_float_array

__all__ = ["instance_norm_stats", "sliding_windows"]


def sliding_windows(
    x: np.ndarray, lookback: int, horizon: int, stride: int = 1, time_axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-copy ``(inputs, targets)`` windows in the house layout ``(n, C, lookback)`` / ``(n, C, horizon)``.

    Args:
        x: ``(T, C)`` (``time_axis=0``, a CSV's layout) or ``(C, T)`` (``time_axis=-1`` or 1) array.
        lookback: input length L >= 1.
        horizon: target length H >= 0.
        stride: step between window starts.
        time_axis: the time axis of ``x``.

    Returns:
        Two read-only views of ``x`` (no copy): ``n = (T - L - H) // stride + 1`` windows.

    Example:
        >>> import numpy as np
        >>> xi, yi = sliding_windows(np.arange(20.0).reshape(10, 2), lookback=4, horizon=2, stride=2)
        >>> xi.shape, yi.shape, yi[0, 0].tolist()
        ((3, 2, 4), (3, 2, 2), [8.0, 10.0])
    """
    arr = as_float_array(x, "x", ndims=(2,))
    if time_axis not in (0, 1, -1, -2):
        raise ValueError(f"time_axis must be 0 or 1 (or -1), got {time_axis}")
    for name, v, lo in (("lookback", lookback, 1), ("horizon", horizon, 0), ("stride", stride, 1)):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    ct = arr.T if time_axis in (0, -2) else arr
    t = ct.shape[1]
    if t < lookback + horizon:
        raise ValueError(f"series of {t} steps is shorter than lookback + horizon = {lookback + horizon}")
    win = sliding_window_view(ct, lookback + horizon, axis=1)[:, ::stride]  # (C, n, L + H)
    win = win.transpose(1, 0, 2)
    return win[..., :lookback], win[..., lookback:]


def instance_norm_stats(x: np.ndarray, axis: int = -1, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """RevIN statistics: mean and ``sqrt(biased var + eps)`` over ``axis``, kept as a size-1 axis.

    Example:
        >>> import numpy as np
        >>> m, s = instance_norm_stats(np.array([[1.0, 3.0]]))
        >>> m.tolist(), round(float(s[0, 0]), 4)
        ([[2.0]], 1.0)
    """
    arr = as_float_array(x, "x", ndims=(1, 2, 3, 4))
    mean = arr.mean(axis=axis, keepdims=True)
    var = ((arr - mean) ** 2).mean(axis=axis, keepdims=True)
    return mean, np.sqrt(var + eps)
