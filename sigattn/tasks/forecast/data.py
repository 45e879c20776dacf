"""Loading multivariate series (TSLib CSV, wide or long pandas frames) and windowing them.

Accepted inputs:

* CSV in the Time-Series-Library layout: a ``date`` column, then the variables, target (``OT``) last.
* A wide pandas DataFrame (a ``date`` column or a ``DatetimeIndex``, one column per variable).
* A long DataFrame with ``unique_id, ds, y`` (neuralforecast's layout), pivoted to wide.

Checks (errors are one line naming the file, the file line -- the header is line 1 -- and the offending
column or timestamp; in-memory frames name the 0-based row): the file must hold a header and data rows;
timestamps must parse, be strictly increasing, unique and regularly spaced (a fixed step or a pandas calendar
frequency such as month starts or business days; gaps are an error unless ``irregular="allow"``, CLI
``params.irregular=allow``, which logs how many were accepted); every variable column must be numeric;
missing values are an error unless ``fill_missing="interpolate"`` (linear over rows, series ends filled with
the nearest value; the number of filled values is logged). ``ForecastTask`` interpolates split by split, never
filling a training row from validation or test rows (``interpolate_missing(..., ends=...)``).
"""

from __future__ import annotations

import csv
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sigattn.errors import DataError

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
IRREGULAR_MODES = ("error", "allow")


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
            raise DataError(f"{self.source}: target column {target!r} not found; columns are {self.columns}")
        order = [c for c in self.columns if c != target] + [target]
        idx = [self.columns.index(c) for c in order]
        return SeriesFrame(self.values[:, idx], order, self.dates, self.source)


def _row_locator(n_rows: int, path: Path | None = None) -> Callable[[int], str]:
    """``where(i)``: ``"line N"`` for data row ``i`` of the CSV ``path`` (header = line 1, blank lines counted
    as pandas skips them), ``"row i"`` for in-memory frames. The file is read again only when a message needs
    a line."""
    if path is None:
        return lambda i: f"row {i}"
    cache: list[list[int]] = []

    def where(i: int) -> str:
        if not cache:
            cache.append(_csv_lines(path)[1])
        lines = cache[0]
        # a mismatch (a layout pandas reads differently) gives the data row rather than a wrong line
        return f"line {lines[i]}" if len(lines) == n_rows else f"data row {i} (0-based)"

    return where


def _csv_lines(path: Path) -> tuple[int, list[int]]:
    """The header's file line and each data row's first file line (1-based), skipping blank lines like pandas."""
    header, rows, last = 0, [], 0
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header:
                rows.append(start)
            else:
                header = start
    return header, rows


def _ts(t) -> str:
    import pandas as pd

    return str(pd.Timestamp(t))


def _check_dates(dates, source: str, where: Callable[[int], str] | None = None) -> np.ndarray:
    import pandas as pd

    where = where or _row_locator(len(dates))
    try:
        parsed = pd.to_datetime(pd.Series(dates), errors="raise")
    except (ValueError, TypeError) as e:
        raise DataError(f"{source}: could not parse the timestamps ({e})") from None
    if parsed.isna().any():
        raise DataError(f"{source}: missing timestamp at {where(int(np.flatnonzero(parsed.isna())[0]))}")
    arr = parsed.to_numpy()
    if len(arr) > 1:
        diffs = np.diff(arr.astype("datetime64[ns]").astype(np.int64))
        dup = np.flatnonzero(diffs == 0)
        if dup.size:
            i = int(dup[0] + 1)
            raise DataError(
                f"{source}: duplicated timestamp {_ts(arr[i])} at {where(i)} (as on {where(i - 1)})"
            )
        back = np.flatnonzero(diffs < 0)
        if back.size:
            i = int(back[0] + 1)
            raise DataError(
                f"{source}: timestamps are not increasing: {where(i)} ({_ts(arr[i])}) comes before "
                f"{where(i - 1)} ({_ts(arr[i - 1])})"
            )
    return arr


def _check_spacing(arr: np.ndarray, source: str, where: Callable[[int], str], irregular: str) -> None:
    """Gaps in the timestamps' spacing: an error, or (``irregular="allow"``) a logged warning.

    Regular means one fixed step, or a calendar frequency pandas recognises (month starts, business days...).
    Otherwise the step is the frequency pandas infers from a short stretch of the series (else the most common
    difference), and every difference other than one step is counted as a gap.
    """
    import pandas as pd
    from pandas.tseries.frequencies import to_offset

    if irregular not in IRREGULAR_MODES:
        raise ValueError(f"irregular must be one of {IRREGULAR_MODES}, got {irregular!r}")
    if len(arr) < 3:
        return
    diffs = np.diff(arr.astype("datetime64[ns]").astype(np.int64))
    if (diffs == diffs[0]).all():
        return
    idx = pd.DatetimeIndex(arr)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # pandas' FutureWarning on infer_freq's return type, PerformanceWarning
        if pd.infer_freq(idx) is not None:
            return
        found = [pd.infer_freq(idx[s : s + 8]) for s in (0, len(idx) // 3, 2 * len(idx) // 3)]
        found = [str(f.freqstr if hasattr(f, "freqstr") else f) for f in found if f is not None]
        if found:
            step = to_offset(max(set(found), key=found.count))
        else:
            values, counts = np.unique(diffs, return_counts=True)
            step = to_offset(pd.Timedelta(int(values[np.argmax(counts)])))
        gaps = np.flatnonzero(np.asarray(idx[1:] != idx[:-1] + step))
    if gaps.size == 0:
        return
    i, n = int(gaps[0]), int(gaps.size)
    what = f"{n} gap{'s' if n > 1 else ''} in the {_step_name(step)} spacing"
    first = f"the first from {where(i)} ({_ts(arr[i])}) to {where(i + 1)} ({_ts(arr[i + 1])})"
    if irregular == "error":
        raise DataError(
            f"{source}: irregular timestamps: {what}, {first}; the splits count rows, so their dates would "
            "shift; override params.irregular=allow to accept them"
        )
    log.warning("%s: accepted %s (params.irregular=allow); %s", source, what, first)


def _step_name(step) -> str:
    """``1-hour``, ``15-minute``, ``1-day``, ``business-day``, else pandas' frequency string."""
    import pandas as pd

    if step.freqstr in ("B", "1B"):
        return "business-day"
    try:
        ns = pd.Timedelta(step).value
    except (ValueError, TypeError):
        return f"{step.freqstr!r}"
    for unit, size in (
        ("day", 86_400 * 10**9),
        ("hour", 3_600 * 10**9),
        ("minute", 60 * 10**9),
        ("second", 10**9),
    ):
        if ns % size == 0:
            return f"{ns // size}-{unit}"
    return str(pd.Timedelta(step))


def _numeric_values(
    df, columns: list[str], source: str, fill_missing: str, where: Callable[[int], str] | None = None
) -> np.ndarray:
    import pandas as pd

    where = where or _row_locator(len(df))
    if fill_missing not in FILL_MODES + ("defer",):
        raise ValueError(f"fill_missing must be one of {FILL_MODES}, got {fill_missing!r}")
    if not columns:
        raise DataError(f"{source}: no variable columns besides the timestamps")
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
            at = f" (e.g. {df[c][bad].iloc[0]!r} at {where(int(np.flatnonzero(bad.to_numpy())[0]))})"
            raise DataError(
                f"{source}: column {c!r} is not numeric (dtype {df[c].dtype}){at if bad.any() else ''}"
            )
    values = np.array(df[columns].to_numpy(dtype=np.float64), copy=True)
    values[~np.isfinite(values)] = np.nan
    missing = np.isnan(values)
    if missing.any():
        if fill_missing == "error":
            counts = {c: int(n) for c, n in zip(columns, missing.sum(axis=0)) if n}
            first = int(np.flatnonzero(missing.any(axis=1))[0])
            raise DataError(
                f"{source}: {int(missing.sum())} missing values {counts}, first at {where(first)}; "
                "override params.fill_missing=interpolate to fill them by linear interpolation in time"
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
                raise DataError(
                    f"{source}: column {columns[j]!r} has no values before row {end} to interpolate from"
                )
            values[gap, j] = np.interp(gap, ok, values[ok, j])
        start = end
    log.warning("%s: filled %d missing values by linear interpolation", source, int(missing.sum()))
    return values


def from_dataframe(
    df,
    date_col: str | None = "date",
    fill_missing: str = "error",
    source: str = "<DataFrame>",
    irregular: str = "error",
    *,
    _path: Path | None = None,
):
    """A :class:`SeriesFrame` from a wide DataFrame (``date_col`` column, or a DatetimeIndex, or no dates).

    ``irregular``: ``"error"`` (gaps in the timestamps' spacing are an error) or ``"allow"`` (logged).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"date": pd.date_range("2020", periods=3, freq="h"), "a": [1.0, 2, 3]})
        >>> from_dataframe(df).values.shape
        (3, 1)
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if irregular not in IRREGULAR_MODES:
        raise ValueError(f"irregular must be one of {IRREGULAR_MODES}, got {irregular!r}")
    if len(df) == 0:
        raise DataError(f"{source}: no data rows (columns {[str(c) for c in df.columns][:10]})")
    where = _row_locator(len(df), _path)
    if date_col is not None and date_col in df.columns:
        dates = _check_dates(df[date_col], source, where)
        columns = [str(c) for c in df.columns if c != date_col]
        df = df.drop(columns=[date_col])
    elif isinstance(df.index, pd.DatetimeIndex):
        dates = _check_dates(df.index, source, where)
        columns = [str(c) for c in df.columns]
    else:
        dates, columns = None, [str(c) for c in df.columns]
    df = df.set_axis(columns, axis=1)
    values = _numeric_values(df, columns, source, fill_missing, where)
    if dates is not None:  # after the value checks: a bad value is named before the spacing of the series
        _check_spacing(dates, source, where, irregular)
    return SeriesFrame(values, columns, dates, source)


def from_long(
    df,
    id_col: str = "unique_id",
    time_col: str = "ds",
    value_col: str = "y",
    fill_missing: str = "error",
    irregular: str = "error",
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
    return from_dataframe(wide, "date", fill_missing, source="<long DataFrame>", irregular=irregular)


def load_csv(
    path, date_col: str = "date", fill_missing: str = "error", irregular: str = "error"
) -> SeriesFrame:
    """Read a TSLib-layout CSV (``date``, variables..., target last); see the module docstring for the checks.

    Example:
        >>> frame = load_csv("../shared/data/forecasting/ETTh1.csv")  # doctest: +SKIP
        >>> frame.values.shape, frame.columns[-1]  # doctest: +SKIP
        ((17420, 7), 'OT')
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"forecasting data file {str(path)!r} does not exist")
    expected = f"expected a header line ({date_col!r}, then the variables) and data rows"
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); {expected}")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file holds only blank lines; {expected}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV ({e})") from None
    if date_col not in df.columns:
        raise DataError(f"{path}: no {date_col!r} column; columns are {list(df.columns)[:10]}")
    if len(df) == 0:
        header = _csv_lines(path)[0]
        raise DataError(
            f"{path}: no data rows after the header (line {header}: {','.join(map(str, df.columns))})"
        )
    return from_dataframe(df, date_col, fill_missing, source=str(path), irregular=irregular, _path=path)


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
