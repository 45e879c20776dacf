"""TSLib split borders (hand-checked), window counts, train-only scaler."""

from __future__ import annotations

import numpy as np
import pytest

from sigattn.tasks.forecast.splits import (
    StandardScaler,
    describe_split,
    infer_split_kind,
    n_windows,
    split_borders,
    split_reason,
)


def test_ett_hour_borders_are_tslib():
    # 12/4/4 months of 30 days: 8640, 11520, 14400; val/test start seq_len earlier.
    b = split_borders(17420, 96, "ett_hour")
    assert b == {"train": (0, 8640), "val": (8640 - 96, 11520), "test": (11520 - 96, 14400)}
    # TSLib logs "train 8449 val 2785 test 2785" for ETTh1 96->96.
    assert [n_windows(e - s, 96, 96) for s, e in b.values()] == [8449, 2785, 2785]
    assert n_windows(b["test"][1] - b["test"][0], 96, 720) == 2161


def test_ett_minute_borders_are_four_times():
    b = split_borders(69680, 96, "ett_minute")
    assert b == {"train": (0, 34560), "val": (34560 - 96, 46080), "test": (46080 - 96, 57600)}


def test_custom_borders_70_10_20():
    # exchange_rate: 7588 rows -> int(5311.6) = 5311 train, int(1517.6) = 1517 test, 760 val.
    b = split_borders(7588, 96, "custom")
    assert b == {"train": (0, 5311), "val": (5311 - 96, 6071), "test": (7588 - 1517 - 96, 7588)}


def test_split_errors():
    with pytest.raises(ValueError, match="20 months"):
        split_borders(10000, 96, "ett_hour")
    with pytest.raises(ValueError, match="longer than the training split"):
        split_borders(100, 96, "custom")
    with pytest.raises(ValueError, match="split kind"):
        split_borders(100, 4, "weekly")


def test_infer_kind():
    assert infer_split_kind("data/ETTh2.csv") == "ett_hour"
    assert infer_split_kind("ETTm1.csv") == "ett_minute"
    assert infer_split_kind("exchange_rate.csv") == "custom"


def test_scaler_population_std_and_inverse():
    rng = np.random.default_rng(0)
    rows = rng.normal(3, 2, size=(50, 3))
    sc = StandardScaler.fit(rows)
    np.testing.assert_allclose(sc.mean, rows.mean(0))
    np.testing.assert_allclose(sc.std, rows.std(0, ddof=0))
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(rows)), rows)
    const = StandardScaler.fit(np.ones((4, 1)))
    assert np.all(np.isfinite(const.transform(np.ones((2, 1)))))


def test_infer_kind_is_case_insensitive_and_says_why():
    assert infer_split_kind("data/etth1.csv") == "ett_hour"  # was silently custom (70/10/20)
    assert infer_split_kind("ETTM2.CSV") == "ett_minute"
    assert infer_split_kind("weather.csv") == "custom"
    assert split_reason("data/etth1.csv") == "file name 'etth1.csv' starts with 'ETTh' (case-insensitive)"
    assert split_reason("weather.csv") == "file name 'weather.csv' starts with neither 'ETTh' nor 'ETTm'"


def test_describe_split_rows_and_dates():
    # custom on 100 rows, L = 10: train [0, 70), val [60, 80), test [70, 100); val/test forecast 70.., 80..
    b = split_borders(100, 10, "custom")
    assert describe_split(b, "custom", 10) == (
        "custom (70/10/20): train rows 0-69, val rows 70-79, test rows 80-99 "
        "(val/test windows start 10 rows earlier)"
    )
    dates = np.arange("2020-01-01T00", 100, dtype="datetime64[h]")
    assert describe_split(b, "custom", 10, dates).startswith(
        "custom (70/10/20): train rows 0-69 (2020-01-01 00:00:00 to 2020-01-03 21:00:00), val rows 70-79"
    )
