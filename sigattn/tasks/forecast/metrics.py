"""Forecast metrics (TSLib conventions) and the adjusted Rand index for recovered channel clusters.

MSE and MAE are means over every test window x horizon step x channel. The literature reports them on the
**normalised** scale (train-split z-score; TSLib ``--inverse False``); sigattn reports both that and the
original scale, each named for what it is (``mse`` / ``mae`` vs ``mse_raw`` / ``mae_raw``).
"""

from __future__ import annotations

import numpy as np

from sigattn.tasks.forecast.splits import StandardScaler

__all__ = ["adjusted_rand_index", "forecast_metrics", "mae", "mse"]


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error over all elements."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {true.shape}")
    return float(np.mean((pred - true) ** 2))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute error over all elements."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {true.shape}")
    return float(np.mean(np.abs(pred - true)))


def forecast_metrics(
    pred: np.ndarray, true: np.ndarray, scaler: StandardScaler | None = None, columns: list[int] | None = None
) -> dict[str, float]:
    """``mse``/``mae`` on the normalised scale and, given the train-split ``scaler``, ``mse_raw``/``mae_raw``.

    Args:
        pred: ``(N, C, H)`` normalised forecasts.
        true: ``(N, C, H)`` normalised targets.
        scaler: a :class:`~sigattn.tasks.forecast.splits.StandardScaler` (or ``None``).
        columns: the scaler columns of the ``C`` output channels (default: all).

    Example:
        >>> forecast_metrics(np.zeros((2, 1, 3)), np.ones((2, 1, 3)))
        {'mse': 1.0, 'mae': 1.0}
    """
    out = {"mse": mse(pred, true), "mae": mae(pred, true)}
    if scaler is not None:
        p = scaler.inverse_transform(np.swapaxes(pred, 1, 2), columns)
        t = scaler.inverse_transform(np.swapaxes(true, 1, 2), columns)
        out.update(mse_raw=mse(p, t), mae_raw=mae(p, t))
    return out


def adjusted_rand_index(labels_true, labels_pred) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) between two labelings of the same items.

    1 for identical partitions (up to renaming), about 0 for random ones.

    Example:
        >>> adjusted_rand_index([0, 0, 1, 1], [5, 5, 2, 2])
        1.0
    """
    a, b = np.asarray(labels_true).ravel(), np.asarray(labels_pred).ravel()
    if a.shape != b.shape:
        raise ValueError(f"labelings differ in length: {a.shape[0]} vs {b.shape[0]}")
    n = a.shape[0]
    if n < 2:
        return 1.0
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    comb = lambda x: x * (x - 1) / 2.0  # noqa: E731
    sum_ij = comb(table).sum()
    sum_a, sum_b = comb(table.sum(1)).sum(), comb(table.sum(0)).sum()
    expected = sum_a * sum_b / comb(n)
    maximum = (sum_a + sum_b) / 2.0
    if maximum == expected:  # both partitions trivial (all one cluster, or all singletons)
        return 1.0
    return float((sum_ij - expected) / (maximum - expected))
