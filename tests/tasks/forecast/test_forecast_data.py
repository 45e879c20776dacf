"""Loading and validating series: CSV, wide and long frames, bad input, interpolation option; real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigattn.data_paths import shared_data_dir
from sigattn.tasks.forecast.data import WindowDataset, from_dataframe, from_long, load_csv


def _csv(tmp_path, df, name="series.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def _frame(n=10):
    return pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=n, freq="h"),
            "a": np.arange(n, dtype=float),
            "OT": np.ones(n),
        }
    )


def test_csv_roundtrip_and_target_last(tmp_path):
    df = _frame()
    df = df[["date", "OT", "a"]]
    f = load_csv(_csv(tmp_path, df))
    assert f.columns == ["OT", "a"] and f.values.shape == (10, 2)
    g = f.move_last("OT")
    assert g.columns == ["a", "OT"]
    np.testing.assert_array_equal(g.values[:, -1], df["OT"].to_numpy())


def test_non_monotonic_timestamps_named(tmp_path):
    df = _frame()
    df.loc[[3, 4], "date"] = df.loc[[4, 3], "date"].to_numpy()
    # rows 3 and 4 are file lines 5 and 6 (the header is line 1)
    with pytest.raises(ValueError) as e:
        load_csv(_csv(tmp_path, df))
    assert (
        "series.csv: timestamps are not increasing: line 6 (2020-01-01 03:00:00) comes before line 5"
        in str(e.value)
    )


def test_duplicated_timestamps_named(tmp_path):
    df = _frame()
    df.loc[5, "date"] = df.loc[4, "date"]
    with pytest.raises(ValueError) as e:
        load_csv(_csv(tmp_path, df))
    assert "series.csv: duplicated timestamp 2020-01-01 04:00:00 at line 7" in str(e.value)


def test_non_numeric_column_named(tmp_path):
    df = _frame()
    df["a"] = df["a"].astype(object)
    df.loc[2, "a"] = "n/a?"
    with pytest.raises(ValueError) as e:
        load_csv(_csv(tmp_path, df))
    assert "series.csv: column 'a' is not numeric (dtype str) (e.g. 'n/a?' at line 4)" in str(e.value)


def test_missing_values_error_or_interpolate(tmp_path):
    df = _frame()
    df.loc[[0, 4, 5], "a"] = np.nan
    path = _csv(tmp_path, df)
    with pytest.raises(ValueError) as e:
        load_csv(path)
    msg = str(e.value)
    assert "series.csv: 3 missing values {'a': 3}, first at line 2; " in msg
    assert "override params.fill_missing=interpolate to fill them" in msg
    assert "fill_missing='interpolate'" not in msg  # the CLI override, not Python syntax
    f = load_csv(path, fill_missing="interpolate")
    ref = pd.Series(df["a"]).interpolate(method="linear", limit_direction="both").to_numpy()
    np.testing.assert_allclose(f.values[:, 0], ref)


def test_missing_file_and_unparsable_dates(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv")
    df = _frame()
    df["date"] = df["date"].astype(str)
    df.loc[1, "date"] = "yesterday-ish"
    with pytest.raises(ValueError, match="could not parse the timestamps"):
        load_csv(_csv(tmp_path, df))


def test_long_frame_equals_wide():
    wide = _frame(6)
    long = wide.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    long = long.sample(frac=1.0, random_state=0)  # order must not matter
    f = from_long(long)
    w = from_dataframe(wide)
    assert sorted(f.columns) == sorted(w.columns)
    for c in w.columns:
        np.testing.assert_array_equal(f.values[:, f.columns.index(c)], w.values[:, w.columns.index(c)])
    dup = pd.concat([long, long.iloc[:1]])
    with pytest.raises(ValueError, match="duplicated timestamp"):
        from_long(dup)


def test_datetime_index_frame():
    df = _frame(5).set_index("date")
    f = from_dataframe(df)
    assert f.columns == ["a", "OT"] and f.dates is not None and len(f.dates) == 5


def test_window_dataset_counts_and_content():
    data = np.arange(40, dtype=np.float32).reshape(20, 2)
    ds = WindowDataset(data, seq_len=5, pred_len=3)
    assert len(ds) == 20 - 5 - 3 + 1
    last = len(ds) - 1
    x, y, i = ds[last]
    assert i == last == 12
    np.testing.assert_array_equal(x.numpy(), data[12:17].T)
    np.testing.assert_array_equal(y.numpy(), data[17:20].T)
    xs, ys = ds.tensors()
    assert xs.shape == (13, 2, 5) and ys.shape == (13, 2, 3)
    np.testing.assert_array_equal(xs[7].numpy(), ds[7][0].numpy())
    with pytest.raises(IndexError):
        ds[13]


@pytest.mark.realdata
@pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data is absent")
def test_real_files_load():
    root = shared_data_dir() / "forecasting"
    etth1 = load_csv(root / "ETTh1.csv")
    assert etth1.values.shape == (17420, 7) and etth1.columns[-1] == "OT"
    assert str(etth1.dates[0])[:19] == "2016-07-01T00:00:00"
    exr = load_csv(root / "exchange_rate.csv")
    assert exr.values.shape == (7588, 8) and exr.columns == ["0", "1", "2", "3", "4", "5", "6", "OT"]


def _hourly_with_gaps(n=400):
    """Hourly rows with two gaps: rows 10..109 (100 hours) and row 250 are absent."""
    df = _frame(n)
    return df.drop(index=list(range(10, 110)) + [250]).reset_index(drop=True)


def test_gap_in_hourly_timestamps_is_an_error_naming_file_lines_and_count(tmp_path):
    path = _csv(tmp_path, _hourly_with_gaps())
    with pytest.raises(ValueError) as e:
        load_csv(path)
    msg = str(e.value)
    assert "\n" not in msg
    # row 9 (09:00) is file line 11; the next row is 100 hours later: 2020-01-01 10:00 + 100 h = 01-05 14:00.
    assert (
        "series.csv: irregular timestamps: 2 gaps in the 1-hour spacing, the first from line 11 "
        "(2020-01-01 09:00:00) to line 12 (2020-01-05 14:00:00)"
    ) in msg
    assert "override params.irregular=allow to accept them" in msg


def test_irregular_timestamps_accepted_by_choice_and_logged(tmp_path, caplog):
    path = _csv(tmp_path, _hourly_with_gaps())
    with caplog.at_level("WARNING", logger="sigattn.tasks.forecast.data"):
        f = load_csv(path, irregular="allow")
    assert f.values.shape == (299, 2)  # nothing dropped: 400 - 100 - 1 rows
    assert "series.csv: accepted 2 gaps in the 1-hour spacing (params.irregular=allow)" in caplog.text
    with pytest.raises(ValueError, match="irregular must be one of"):
        load_csv(path, irregular="ignore")


@pytest.mark.parametrize("freq", ["MS", "B", "D", "15min"])
def test_calendar_frequencies_are_regular(tmp_path, freq):
    # month starts are 28-31 days apart and business days skip weekends: regular all the same
    df = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=40, freq=freq), "OT": np.arange(40.0)})
    assert load_csv(_csv(tmp_path, df)).values.shape == (40, 1)


def test_missing_business_day_is_a_gap(tmp_path):
    df = pd.DataFrame({"date": pd.date_range("2021-01-04", periods=40, freq="B"), "OT": np.arange(40.0)})
    df = df.drop(index=[20]).reset_index(drop=True)  # row 20 is Monday 2021-02-01
    with pytest.raises(ValueError) as e:
        load_csv(_csv(tmp_path, df))
    assert "1 gap in the business-day spacing, the first from line 21 (2021-01-29 00:00:00)" in str(e.value)


def test_line_numbers_count_blank_lines_and_the_header(tmp_path):
    # pandas skips the blank line 3, so the bad value (data row 2) sits on file line 5, not "row 2"
    p = tmp_path / "blank.csv"
    p.write_text("date,OT\n2020-01-01 00:00,1\n\n2020-01-01 01:00,2\n2020-01-01 02:00,oops\n")
    with pytest.raises(ValueError) as e:
        load_csv(p)
    assert "blank.csv: column 'OT' is not numeric (dtype str) (e.g. 'oops' at line 5)" in str(e.value)


def test_empty_csv_names_the_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError) as e:
        load_csv(empty)
    assert f"{empty}: the file is empty (0 bytes); expected a header line" in str(e.value)


def test_header_only_csv_names_the_file(tmp_path):
    header = tmp_path / "header_only.csv"
    header.write_text("date,a,OT\n")
    with pytest.raises(ValueError) as e:
        load_csv(header)
    assert f"{header}: no data rows after the header (line 1: date,a,OT)" in str(e.value)
