"""fir_epochs (filter + epoch in one pass) and in-place / float32 Euclidean alignment, against MNE and formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from sigattn.features import epochs_from_events, euclidean_alignment, fir_epochs, fir_filter

mne = pytest.importorskip("mne")


def _events(samples, code=1):
    s = np.asarray(samples, dtype=np.int64)
    return np.stack([s, np.zeros_like(s), np.full_like(s, code)], axis=1)


@pytest.fixture(scope="module")
def rec():
    return np.random.default_rng(3).standard_normal((5, 30000)) * 1e-5  # ~17 overlap-save segments at 160 Hz


@pytest.mark.parametrize(
    ("samples", "tmin", "tmax", "baseline"),
    [
        ([0, 700, 5000, 5050, 29359], 0.0, 4.0, None),  # first and last possible epochs, overlapping epochs
        ([400, 20000], -0.5, 2.0, (None, 0.0)),  # sparse: most segments are skipped; baseline
        ([9000], 0.0, 0.0, None),  # one sample
    ],
)
def test_fir_epochs_equals_filter_then_epoch_and_mne(rec, samples, tmin, tmax, baseline):
    mne.set_log_level("ERROR")
    ev = _events(samples)
    got = fir_epochs(rec, 160.0, 8.0, 30.0, ev, tmin, tmax, baseline=baseline)
    two_step = epochs_from_events(fir_filter(rec, 160.0, 8.0, 30.0), ev, 160.0, tmin, tmax, baseline=baseline)
    np.testing.assert_array_equal(got, two_step)  # same segments, same FFTs: identical
    raw = mne.io.RawArray(mne.filter.filter_data(rec, 160.0, 8.0, 30.0), mne.create_info(5, 160.0, "eeg"))
    ref = mne.Epochs(raw, ev, tmin=tmin, tmax=tmax, baseline=baseline, preload=True).get_data()
    assert np.abs(got - ref).max() <= 1e-10 * np.abs(ref).max()
    g32 = fir_epochs(rec, 160.0, 8.0, 30.0, ev, tmin, tmax, baseline=baseline, dtype="float32")
    assert g32.dtype == np.float32 and np.abs(g32 - ref).max() <= 1e-5 * np.abs(ref).max()


def test_fir_epochs_selection_drop_and_events(rec):
    ev = np.concatenate([_events([1000, 3000], 1), _events([2000, 29990], 2)])
    with pytest.warns(UserWarning, match="dropped 1 of 2"):
        got, kept = fir_epochs(rec, 160.0, 8.0, 30.0, ev, 0.0, 1.0, event_id=2, on_outside="drop",
                               return_events=True)  # fmt: skip
    np.testing.assert_array_equal(kept, ev[2:3])
    np.testing.assert_array_equal(
        got, epochs_from_events(fir_filter(rec, 160.0, 8.0, 30.0), ev[2:3], 160.0, 0.0, 1.0)
    )
    with pytest.raises(ValueError, match="outside the data"):
        fir_epochs(rec, 160.0, 8.0, 30.0, ev, 0.0, 1.0)
    with pytest.raises(ValueError, match="dtype"):
        fir_epochs(rec, 160.0, 8.0, 30.0, ev[:1], 0.0, 1.0, dtype="float16")
    with pytest.raises(ValueError, match="Nyquist"):
        fir_epochs(rec, 160.0, 8.0, 90.0, ev[:1], 0.0, 1.0)


# a sample in an epoch, the last sample, a sample in no epoch (its segment is not computed)
@pytest.mark.parametrize("where", [(2, 1500), (4, 29999), (0, 25000)])
def test_fir_non_finite_is_named(rec, where):
    bad = rec.copy()
    bad[where] = np.nan if where[0] != 4 else np.inf
    with pytest.raises(ValueError, match=rf"non-finite value .* at index \({where[0]}, {where[1]}\)"):
        fir_epochs(bad, 160.0, 8.0, 30.0, _events([1000, 3000]), 0.0, 2.0)
    with pytest.raises(ValueError, match=rf"index \(1, {where[0]}, {where[1]}\)"):
        fir_filter(np.stack([rec, bad]), 160.0, 8.0, 30.0)


def test_fir_huge_finite_values_are_not_rejected():
    # float32 samples of 1e37: their float32 check sum overflows to inf, the float64 filtering does not
    x = np.full((2, 3000), 1e37, dtype=np.float32)
    y = fir_filter(x, 160.0, 8.0, 30.0, dtype="float64")
    assert y.dtype == np.float64 and np.isfinite(y).all()


def test_fir_threads_give_identical_results(rec):
    before = torch.get_num_threads()
    x = np.random.default_rng(0).standard_normal((40, 30000))
    try:
        torch.set_num_threads(1)
        one = fir_filter(x, 160.0, 8.0, 30.0)
        torch.set_num_threads(2)
        two = fir_filter(x, 160.0, 8.0, 30.0)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def _formula(x):
    x = x.astype(np.float64)
    r = np.mean([t @ t.T for t in x], axis=0)
    return np.stack([np.real(scipy.linalg.fractional_matrix_power(r, -0.5)) @ t for t in x])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alignment_inplace_and_float32_match_formula(dtype):
    x = (np.random.default_rng(1).standard_normal((30, 6, 200)) * np.arange(1, 7)[:, None]).astype(dtype)
    ref = _formula(x)
    out, r_inv = euclidean_alignment(x)
    assert out.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 2e-5
    assert np.abs(out - ref).max() <= tol * np.abs(ref).max()
    y = x.copy()
    same, _ = euclidean_alignment(y, inplace=True)
    assert same is y
    np.testing.assert_array_equal(y, out)
    with pytest.raises(ValueError, match="inplace"):
        euclidean_alignment(np.asfortranarray(x), inplace=True)


def test_alignment_names_non_finite_trials_and_overflow():
    x = np.random.default_rng(2).standard_normal((5, 3, 50))
    x[3, 1, 7] = np.nan
    with pytest.raises(ValueError, match=r"non-finite value \(nan\) at index \(3, 1, 7\)"):
        euclidean_alignment(x)
    x[3, 1, 7] = 1e200  # finite, but its square overflows
    with pytest.raises(ValueError, match="overflows"):
        euclidean_alignment(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alignment_threads_give_identical_results(dtype):
    x = np.random.default_rng(4).standard_normal((60, 8, 3000)).astype(dtype)  # ~44 blocks of trials
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, r_one = euclidean_alignment(x)
        torch.set_num_threads(2)
        two, r_two = euclidean_alignment(x)
        y = x.copy()
        euclidean_alignment(y, inplace=True)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(r_one, r_two)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(y, one)


def test_alignment_inplace_refuses_read_only_trials():
    x = np.random.default_rng(5).standard_normal((4, 3, 50))
    x.setflags(write=False)
    before = x.copy()
    with pytest.raises(ValueError, match="inplace"):
        euclidean_alignment(x, inplace=True)
    np.testing.assert_array_equal(x, before)


def test_alignment_of_no_trials_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one trial"):
        euclidean_alignment(np.zeros((0, 4, 100)))
