"""Time-Series-Library split borders, the train-only scaler and window counting.

TSLib (github.com/thuml/Time-Series-Library, ``data_provider/data_loader.py``):

* ETT hourly: 12/4/4 months of 30 days = 8640/2880/2880 rows; ``border1s = [0, 8640 - L, 11520 - L]``,
  ``border2s = [8640, 11520, 14400]``; the 15-minute variant multiplies every border by 4 (rows after month 20
  are never used).
* Other datasets: ``n_train = int(0.7 n)``, ``n_test = int(0.2 n)``, ``n_val = n - n_train - n_test``;
  ``border1s = [0, n_train - L, n - n_test - L]``, ``border2s = [n_train, n_train + n_val, n]``.

Validation and test windows start ``L`` rows before their split so their *targets* cover the whole split
(standard). The scaler is fit on the training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SPLIT_KINDS",
    "StandardScaler",
    "describe_split",
    "infer_split_kind",
    "n_windows",
    "split_borders",
    "split_reason",
]

SPLIT_KINDS = ("ett_hour", "ett_minute", "custom")
_MONTH_H = 30 * 24


def infer_split_kind(name: str) -> str:
    """``ett_hour`` for ``ETTh*``, ``ett_minute`` for ``ETTm*``, ``custom`` otherwise (file or dataset name).

    The prefix is matched case-insensitively (``etth1.csv`` is ETT hourly); :func:`split_reason` says why.
    """
    return _infer(name)[0]


def split_reason(name: str) -> str:
    """Why :func:`infer_split_kind` chose its kind for ``name`` (one sentence for the log and the report)."""
    return _infer(name)[1]


def _infer(name: str) -> tuple[str, str]:
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    for prefix, kind in (("ETTh", "ett_hour"), ("ETTm", "ett_minute")):
        if base.lower().startswith(prefix.lower()):
            return kind, f"file name {base!r} starts with {prefix!r} (case-insensitive)"
    return "custom", f"file name {base!r} starts with neither 'ETTh' nor 'ETTm'"


def describe_split(borders: dict[str, tuple[int, int]], kind: str, seq_len: int, dates=None) -> str:
    """One line naming the split kind and the rows each split forecasts (0-based, inclusive), dates if known.

    ``describe_split(split_borders(100, 10), "custom", 10)`` reads ``custom (70/10/20): train rows 0-69, val
    rows 70-79, test rows 80-99 (val/test windows start 10 rows earlier)``.
    """
    what = {"ett_hour": "ETT hourly, 12/4/4 months", "ett_minute": "ETT 15-minute, 12/4/4 months"}
    parts = []
    for split, (a, b) in borders.items():
        first = a if split == "train" else a + seq_len  # val/test targets start after their lookback
        span = f"{split} rows {first}-{b - 1}"
        if dates is not None and len(dates) >= b:
            span += f" ({_day(dates[first])} to {_day(dates[b - 1])})"
        parts.append(span)
    return (
        f"{kind} ({what.get(kind, '70/10/20')}): {', '.join(parts)} "
        f"(val/test windows start {seq_len} rows earlier)"
    )


def _day(t) -> str:
    return str(np.datetime64(t, "s")).replace("T", " ")


def split_borders(n_rows: int, seq_len: int, kind: str = "custom") -> dict[str, tuple[int, int]]:
    """Row ranges ``[start, end)`` of the train/val/test splits, lookback included (TSLib's borders).

    Args:
        n_rows: rows in the file.
        seq_len: lookback ``L``.
        kind: ``"ett_hour"``, ``"ett_minute"`` or ``"custom"`` (70/10/20).

    Returns:
        ``{"train": (0, b), "val": (b - L, c), "test": (c - L, d)}``.

    Example:
        >>> split_borders(17420, 96, "ett_hour")
        {'train': (0, 8640), 'val': (8544, 11520), 'test': (11424, 14400)}
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"split kind must be one of {SPLIT_KINDS}, got {kind!r}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if kind == "custom":
        n_train, n_test = int(n_rows * 0.7), int(n_rows * 0.2)
        n_val = n_rows - n_train - n_test
        b1 = [0, n_train - seq_len, n_rows - n_test - seq_len]
        b2 = [n_train, n_train + n_val, n_rows]
    else:
        f = 4 if kind == "ett_minute" else 1
        m = _MONTH_H * f
        need = 20 * m
        if n_rows < need:
            raise ValueError(f"an {kind} split needs at least {need} rows (20 months), the data has {n_rows}")
        b1 = [0, 12 * m - seq_len, 16 * m - seq_len]
        b2 = [12 * m, 16 * m, 20 * m]
    if b1[1] < 0:
        raise ValueError(
            f"lookback seq_len={seq_len} is longer than the training split ({b2[0]} rows of {n_rows})"
        )
    return {"train": (b1[0], b2[0]), "val": (b1[1], b2[1]), "test": (b1[2], b2[2])}


def n_windows(n_rows: int, seq_len: int, pred_len: int, stride: int = 1) -> int:
    """Number of (lookback, horizon) windows in ``n_rows`` rows (all of them; nothing is dropped)."""
    span = n_rows - seq_len - pred_len
    return 0 if span < 0 else span // stride + 1


@dataclass
class StandardScaler:
    """Per-column z-score fit on the training rows (sklearn's ``StandardScaler``: population std).

    Example:
        >>> sc = StandardScaler.fit(np.array([[1.0, 10.0], [3.0, 30.0]]))
        >>> sc.transform(np.array([[2.0, 20.0]]))
        array([[0., 0.]])
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray) -> StandardScaler:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] < 1:
            raise ValueError(f"expected training rows (T, C) with T >= 1, got shape {rows.shape}")
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays at zero instead of dividing by zero
        return cls(mean, std)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std

    def inverse_transform(self, x: np.ndarray, columns: slice | list[int] | None = None) -> np.ndarray:
        """Undo the scaling on ``(..., C)`` arrays (``columns`` selects the scaler's columns)."""
        mean = self.mean if columns is None else self.mean[columns]
        std = self.std if columns is None else self.std[columns]
        return np.asarray(x, dtype=np.float64) * std + mean
