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
    with pytest.raises(ValueError, match=r"series\.csv.*not increasing.*row 4"):
        load_csv(_csv(tmp_path, df))


def test_duplicated_timestamps_named(tmp_path):
    df = _frame()
    df.loc[5, "date"] = df.loc[4, "date"]
    with pytest.raises(ValueError, match=r"series\.csv.*duplicated timestamp.*row 5"):
        load_csv(_csv(tmp_path, df))


def test_non_numeric_column_named(tmp_path):
    df = _frame()
    df["a"] = df["a"].astype(object)
    df.loc[2, "a"] = "n/a?"
    with pytest.raises(ValueError, match=r"column 'a' is not numeric.*'n/a\?' at row 2"):
        load_csv(_csv(tmp_path, df))


def test_missing_values_error_or_interpolate(tmp_path):
    df = _frame()
    df.loc[[0, 4, 5], "a"] = np.nan
    path = _csv(tmp_path, df)
    with pytest.raises(ValueError, match=r"3 missing values \{'a': 3\}, first at row 0.*interpolate"):
        load_csv(path)
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
