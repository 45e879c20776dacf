"""Loading multivariate series (TSLib CSV, wide or long pandas frames) and windowing them.

Accepted inputs:

* CSV in the Time-Series-Library layout: a ``date`` column, then the variables, target (``OT``) last.
* A wide pandas DataFrame (a ``date`` column or a ``DatetimeIndex``, one column per variable).
* A long DataFrame with ``unique_id, ds, y`` (neuralforecast's layout), pivoted to wide.

Checks (errors name the file and the offending column, row or timestamp): timestamps must parse, be strictly
increasing and unique; every variable column must be numeric; missing values are an error unless
``fill_missing="interpolate"`` (linear over rows, series ends filled with the nearest value; the number of
filled values is logged). ``ForecastTask`` interpolates split by split, never filling a training row from
validation or test rows (``interpolate_missing(..., ends=...)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "SeriesFrame",
    "WindowDataset",
    "from_dataframe",
    "from_long",
    "interpolate_missing",
    "load_csv",
    "make_windows",
]

log = logging.getLogger(__name__)
FILL_MODES = ("error", "interpolate")


@dataclass
class SeriesFrame:
    """A validated multivariate series.

    Attributes:
        values: ``(T, C)`` float64 (TSLib layout: rows are time steps).
        columns: variable names.
        dates: ``(T,)`` ``datetime64[ns]`` or ``None``.
        source: where it came from (for error messages).
    """

    values: np.ndarray
    columns: list[str]
    dates: np.ndarray | None = None
    source: str = "<array>"

    def move_last(self, target: str) -> SeriesFrame:
        """The same frame with column ``target`` last (TSLib's convention for the target)."""
        if target not in self.columns:
            raise ValueError(f"{self.source}: target column {target!r} not found; columns are {self.columns}")
        order = [c for c in self.columns if c != target] + [target]
        idx = [self.columns.index(c) for c in order]
        return SeriesFrame(self.values[:, idx], order, self.dates, self.source)


def _check_dates(dates, source: str) -> np.ndarray:
    import pandas as pd

    try:
        parsed = pd.to_datetime(pd.Series(dates), errors="raise")
    except (ValueError, TypeError) as e:
        raise ValueError(f"{source}: could not parse the timestamps ({e})") from None
    if parsed.isna().any():
        raise ValueError(f"{source}: missing timestamp at row {int(np.flatnonzero(parsed.isna())[0])}")
    arr = parsed.to_numpy()
    if len(arr) > 1:
        diffs = np.diff(arr.astype("datetime64[ns]").astype(np.int64))
        dup = np.flatnonzero(diffs == 0)
        if dup.size:
            raise ValueError(f"{source}: duplicated timestamp {arr[dup[0] + 1]} at row {int(dup[0] + 1)}")
        back = np.flatnonzero(diffs < 0)
        if back.size:
            i = int(back[0] + 1)
            raise ValueError(
                f"{source}: timestamps are not increasing: row {i} ({arr[i]}) comes before row {i - 1} ({arr[i - 1]})"
            )
    return arr


def _numeric_values(df, columns: list[str], source: str, fill_missing: str) -> np.ndarray:
    import pandas as pd

    if fill_missing not in FILL_MODES + ("defer",):
        raise ValueError(f"fill_missing must be one of {FILL_MODES}, got {fill_missing!r}")
    if not columns:
        raise ValueError(f"{source}: no variable columns besides the timestamps")
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
            where = (
                f" (e.g. {df[c][bad].iloc[0]!r} at row {int(np.flatnonzero(bad.to_numpy())[0])})"
                if bad.any()
                else ""
            )
            raise ValueError(f"{source}: column {c!r} is not numeric (dtype {df[c].dtype}){where}")
    values = np.array(df[columns].to_numpy(dtype=np.float64), copy=True)
    values[~np.isfinite(values)] = np.nan
    missing = np.isnan(values)
    if missing.any():
        if fill_missing == "error":
            counts = {c: int(n) for c, n in zip(columns, missing.sum(axis=0)) if n}
            first = int(np.flatnonzero(missing.any(axis=1))[0])
            raise ValueError(
                f"{source}: {int(missing.sum())} missing values {counts}, first at row {first}; "
                "pass fill_missing='interpolate' to fill them by linear interpolation in time"
            )
        if fill_missing == "defer":  # the caller fills per split (ForecastTask), see interpolate_missing
            return values
        values = interpolate_missing(values, columns, source)
    return values


def interpolate_missing(
    values: np.ndarray, columns: list[str], source: str = "<series>", ends: list[int] | None = None
) -> np.ndarray:
    """Fill NaNs by linear interpolation over rows, segment by segment, never from a later segment.

    ``ends`` are the exclusive end rows of consecutive segments (e.g. the ends of the train, val and test
    splits). Rows of a segment are filled from known values in rows before the segment's end only, so a gap at
    the end of the training split takes the last training value instead of leaning towards validation data
    (which would leak into the scaler and the training windows). ``None``: one segment, the whole series.
    Values before a column's first known value take that value.
    """
    values = np.array(values, dtype=np.float64, copy=True)
    missing = np.isnan(values)
    if not missing.any():
        return values
    ends = [len(values)] if ends is None else sorted(set(int(e) for e in ends))
    start = 0
    for end in ends:
        for j in range(values.shape[1]):
            gap = np.flatnonzero(missing[start:end, j]) + start
            if gap.size == 0:
                continue
            ok = np.flatnonzero(~missing[:end, j])
            if ok.size == 0:
                raise ValueError(
                    f"{source}: column {columns[j]!r} has no values before row {end} to interpolate from"
                )
            values[gap, j] = np.interp(gap, ok, values[ok, j])
        start = end
    log.warning("%s: filled %d missing values by linear interpolation", source, int(missing.sum()))
    return values


def from_dataframe(
    df, date_col: str | None = "date", fill_missing: str = "error", source: str = "<DataFrame>"
):
    """A :class:`SeriesFrame` from a wide DataFrame (``date_col`` column, or a DatetimeIndex, or no dates).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"date": pd.date_range("2020", periods=3, freq="h"), "a": [1.0, 2, 3]})
        >>> from_dataframe(df).values.shape
        (3, 1)
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if date_col is not None and date_col in df.columns:
        dates = _check_dates(df[date_col], source)
        columns = [str(c) for c in df.columns if c != date_col]
        df = df.drop(columns=[date_col])
    elif isinstance(df.index, pd.DatetimeIndex):
        dates = _check_dates(df.index, source)
        columns = [str(c) for c in df.columns]
    else:
        dates, columns = None, [str(c) for c in df.columns]
    df = df.set_axis(columns, axis=1)
    return SeriesFrame(_numeric_values(df, columns, source, fill_missing), columns, dates, source)


def from_long(
    df, id_col: str = "unique_id", time_col: str = "ds", value_col: str = "y", fill_missing: str = "error"
) -> SeriesFrame:
    """A :class:`SeriesFrame` from a long frame (neuralforecast's ``unique_id, ds, y``), one column per id.

    Every id must have a value at every timestamp (missing ones become NaN and follow ``fill_missing``).
    """
    import pandas as pd

    missing = [c for c in (id_col, time_col, value_col) if c not in df.columns]
    if missing:
        raise ValueError(f"long DataFrame lacks column(s) {missing}; it has {list(df.columns)}")
    dup = df.duplicated([id_col, time_col])
    if dup.any():
        row = df[dup].iloc[0]
        raise ValueError(f"long DataFrame: duplicated timestamp {row[time_col]} for id {row[id_col]!r}")
    if not pd.api.types.is_numeric_dtype(df[value_col]):
        raise ValueError(f"long DataFrame: column {value_col!r} is not numeric (dtype {df[value_col].dtype})")
    wide = df.pivot(index=time_col, columns=id_col, values=value_col).sort_index()
    wide.columns = [str(c) for c in wide.columns]
    wide = wide.reset_index().rename(columns={time_col: "date"})
    return from_dataframe(wide, "date", fill_missing, source="<long DataFrame>")


def load_csv(path, date_col: str = "date", fill_missing: str = "error") -> SeriesFrame:
    """Read a TSLib-layout CSV (``date``, variables..., target last).

    Example:
        >>> frame = load_csv("../shared/data/forecasting/ETTh1.csv")  # doctest: +SKIP
        >>> frame.values.shape, frame.columns[-1]  # doctest: +SKIP
        ((17420, 7), 'OT')
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"forecasting data file {str(path)!r} does not exist")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    if date_col not in df.columns:
        raise ValueError(f"{path}: no {date_col!r} column; columns are {list(df.columns)[:10]}")
    return from_dataframe(df, date_col, fill_missing, source=str(path))


def make_windows(
    data: np.ndarray, seq_len: int, pred_len: int, in_cols=None, out_cols=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of ``data`` ``(T, C)``: lookbacks ``(N, C_in, L)`` and horizons ``(N, C_out, H)``.

    Uses :func:`sigattn.features.sliding_windows` (TSLib windows: input ``[s, s + L)``, target
    ``[s + L, s + L + H)``, stride 1, nothing dropped).
    """
    from sigattn.features import sliding_windows

    x, y = sliding_windows(np.asarray(data, dtype=np.float32), seq_len, pred_len)
    if in_cols is not None:
        x = x[:, in_cols]
    if out_cols is not None:
        y = y[:, out_cols]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


class WindowDataset(Dataset):
    """Every (lookback, horizon) window of a ``(T, C)`` array, stride 1; items are ``(x, y, index)``.

    ``x`` is ``(C_in, L)`` from ``in_cols`` and ``y`` is ``(C_out, H)`` from ``out_cols`` (house layout,
    channels first). Nothing is dropped: ``len = T - L - H + 1``.
    """

    def __init__(self, data: np.ndarray, seq_len: int, pred_len: int, in_cols=None, out_cols=None) -> None:
        data = np.asarray(data, dtype=np.float32)
        if data.ndim != 2:
            raise ValueError(f"expected (T, C) data, got shape {data.shape}")
        self.seq_len, self.pred_len = seq_len, pred_len
        n = data.shape[1]
        self.in_cols = list(range(n)) if in_cols is None else list(in_cols)
        self.out_cols = list(range(n)) if out_cols is None else list(out_cols)
        self.data = torch.from_numpy(np.ascontiguousarray(data))
        self.n = max(0, data.shape[0] - seq_len - pred_len + 1)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(f"window {i} out of range for {self.n} windows")
        x = self.data[i : i + self.seq_len, self.in_cols].T
        y = self.data[i + self.seq_len : i + self.seq_len + self.pred_len, self.out_cols].T
        return x.contiguous(), y.contiguous(), i

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All windows at once, ``(N, C_in, L)`` and ``(N, C_out, H)`` (for benchmarks and baselines)."""
        return make_windows(self.data.numpy(), self.seq_len, self.pred_len, self.in_cols, self.out_cols)
