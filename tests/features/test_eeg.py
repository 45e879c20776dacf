"""EEG preprocessing vs independent references: SciPy (sosfiltfilt, resample_poly), MNE (filter_data,
create_filter, Epochs) and a float64 NumPy/SciPy Euclidean alignment written from the paper's formula."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy import signal

from sigattn.features import (
    OnlineEuclideanAlignment,
    epochs_from_events,
    euclidean_alignment,
    fir_filter,
    iir_filter,
    mne_fir_design,
    notch_filter,
    resample_poly,
    sosfiltfilt,
)

mne = pytest.importorskip("mne")
mne.set_log_level("ERROR")
SF = 160.0


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def eeg():
    rng = np.random.default_rng(0)
    t = np.arange(1200) / SF
    x = rng.standard_normal((3, 8, t.size)) * 20e-6 + 50e-6 * np.sin(2 * np.pi * 10 * t) + 1e-4
    return x


@pytest.mark.parametrize(
    "l_freq, h_freq, order, btype",
    [
        (8.0, 30.0, 4, None),
        (1.0, None, 4, None),
        (None, 40.0, 2, None),
        (0.5, 70.0, 6, None),
        (45.0, 55.0, 3, "bandstop"),
    ],
)
def test_iir_matches_sosfiltfilt(eeg, l_freq, h_freq, order, btype):
    kind = btype or ("bandpass" if l_freq and h_freq else "highpass" if l_freq else "lowpass")
    wn = [l_freq, h_freq] if kind in ("bandpass", "bandstop") else (l_freq or h_freq)
    sos = signal.butter(order, wn, btype=kind, output="sos", fs=SF)
    ref = signal.sosfiltfilt(sos, eeg, axis=-1)
    ours = iir_filter(eeg, SF, l_freq, h_freq, order=order, btype=btype)
    assert ours.shape == eeg.shape and ours.dtype == eeg.dtype
    assert rel_err(ours, ref) <= 1e-6
    # (C, T) input and float32 input
    assert rel_err(iir_filter(eeg[0], SF, l_freq, h_freq, order, btype), ref[0]) <= 1e-6
    f32 = iir_filter(eeg[0].astype(np.float32), SF, l_freq, h_freq, order, btype)
    assert f32.dtype == np.float32 and rel_err(f32, ref[0]) <= 1e-5


def test_notch_matches_scipy(eeg):
    sos = np.concatenate([signal.tf2sos(*signal.iirnotch(f, 25.0, fs=SF)) for f in (50.0, 60.0)])
    assert rel_err(notch_filter(eeg, SF, [50.0, 60.0], quality=25.0), signal.sosfiltfilt(sos, eeg)) <= 1e-6


@pytest.mark.parametrize(
    "sfreq, l_freq, h_freq",
    [(160.0, 8.0, 30.0), (250.0, 1.0, 40.0), (250.0, 0.5, None), (250.0, None, 40.0), (160.0, 4.0, 79.0)],
)
def test_fir_matches_mne(sfreq, l_freq, h_freq):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 1500)) * 1e-5
    np.testing.assert_array_equal(
        mne_fir_design(sfreq, l_freq, h_freq), mne.filter.create_filter(None, sfreq, l_freq, h_freq)
    )
    ref = mne.filter.filter_data(x, sfreq, l_freq, h_freq)
    assert rel_err(fir_filter(x, sfreq, l_freq, h_freq), ref) <= 1e-5
    # signal shorter than the filter (MNE pads with reflect_limited over the whole signal)
    short = x[0, :, :300]
    assert (
        rel_err(
            fir_filter(short, sfreq, l_freq, h_freq), mne.filter.filter_data(short, sfreq, l_freq, h_freq)
        )
        <= 1e-5
    )
    # float32 input runs float32 FFTs: still within 1e-5 of MNE's float64 result on the same samples
    x32 = x.astype(np.float32)
    f32 = fir_filter(x32, sfreq, l_freq, h_freq)
    assert f32.dtype == np.float32
    assert rel_err(f32, mne.filter.filter_data(x32.astype(np.float64), sfreq, l_freq, h_freq)) <= 1e-5


@pytest.mark.parametrize("up, down", [(25, 16), (1, 2), (3, 1), (160, 250), (5, 5)])
def test_resample_matches_scipy(eeg, up, down):
    ref = signal.resample_poly(eeg, up, down, axis=-1)
    ours = resample_poly(eeg, up, down)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()
    np.testing.assert_allclose(
        resample_poly(eeg, up, down, axis=1), signal.resample_poly(eeg, up, down, axis=1), atol=1e-12
    )


@pytest.mark.parametrize(
    "tmin, tmax, baseline", [(-0.2, 0.5, (None, 0.0)), (0.0, 4.0, None), (-1.0, 1.0, (-0.5, -0.1))]
)
def test_epochs_match_mne(eeg, tmin, tmax, baseline):
    data = eeg[0]
    events = np.array([[200, 0, 1], [400, 0, 2], [653, 0, 1], [900, 0, 3]])
    info = mne.create_info(data.shape[0], SF, "eeg")
    raw = mne.io.RawArray(data, info)
    ok = [e for e in events if e[0] + round(tmin * SF) >= 0 and e[0] + round(tmax * SF) < data.shape[1]]
    ok = np.array(ok)
    ids = {name: code for name, code in (("a", 1), ("b", 2), ("c", 3)) if code in ok[:, 2]}
    ref = mne.Epochs(raw, ok, event_id=ids, tmin=tmin, tmax=tmax, baseline=baseline, preload=True)
    ours = epochs_from_events(data, ok, SF, tmin, tmax, baseline=baseline)
    assert ours.shape == ref.get_data().shape
    np.testing.assert_allclose(ours, ref.get_data(), rtol=1e-10, atol=1e-18)
    sel = epochs_from_events(data, ok, SF, tmin, tmax, event_id={"a": 1}, baseline=baseline)
    np.testing.assert_allclose(sel, ref["a"].get_data(), rtol=1e-10, atol=1e-18)


def test_epochs_outside_and_bad_input(eeg):
    data = eeg[0]
    events = np.array([[10, 0, 1], [500, 0, 1]])
    with pytest.raises(ValueError, match="event 0 at sample 10"):
        epochs_from_events(data, events, SF, -0.5, 1.0)
    with pytest.warns(UserWarning, match="dropped 1 of 2"):
        ep, kept = epochs_from_events(data, events, SF, -0.5, 1.0, on_outside="drop", return_events=True)
    assert ep.shape == (1, 8, 241) and kept[0, 0] == 500
    with pytest.raises(ValueError, match="event_id"):
        epochs_from_events(data, events, SF, 0, 1, event_id=[7])
    with pytest.raises(ValueError, match="events"):
        epochs_from_events(data, events.astype(float), SF, 0, 1)


def ref_ea(x):
    """Paper formula in float64 with SciPy's matrix power (independent of our eigendecomposition)."""
    r = np.mean([xi @ xi.T for xi in x.astype(np.float64)], axis=0)
    r_is = np.real(scipy.linalg.fractional_matrix_power(r, -0.5))
    return np.stack([r_is @ xi for xi in x]), r_is


def test_euclidean_alignment_matches_formula(eeg):
    x = eeg[:, :, :200].copy()
    x = np.concatenate([x, x[::-1] * 1.3 + 1e-6], axis=0)
    ours, r_inv = euclidean_alignment(x)
    ref, r_ref = ref_ea(x)
    np.testing.assert_allclose(r_inv, r_ref, rtol=1e-6)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.mean(ours @ ours.transpose(0, 2, 1), axis=0), np.eye(8), atol=1e-8)
    # np.cov variant (DBConformer)
    ours_c, r_c = euclidean_alignment(x, covariance="cov")
    r = np.mean([np.cov(xi) for xi in x], axis=0)
    np.testing.assert_allclose(r_c, np.real(scipy.linalg.fractional_matrix_power(r, -0.5)), rtol=1e-6)
    assert euclidean_alignment(x.astype(np.float32))[0].dtype == np.float32


def test_online_alignment_is_causal_and_matches_formula():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4, 64)) * np.array([1.0, 2.0, 0.5, 3.0])[:, None]
    ea = OnlineEuclideanAlignment(covariance="cov")
    r = None
    for k, xk in enumerate(x):
        out = ea(xk)
        cov = np.cov(xk)
        r = cov if r is None else (k * r + cov) / (k + 1)
        ref = np.real(scipy.linalg.fractional_matrix_power(r, -0.5)) @ xk
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-10)
    # after all trials the online reference is the offline mean of np.cov
    np.testing.assert_allclose(ea.reference, np.mean([np.cov(xi) for xi in x], axis=0), rtol=1e-10)
    with pytest.raises(ValueError, match="before any update"):
        OnlineEuclideanAlignment().transform(x[0])
    with pytest.raises(ValueError, match="positive definite"):
        OnlineEuclideanAlignment()(rng.standard_normal((8, 3)))


def test_bad_inputs():
    x = np.zeros((4, 500))
    x[2, 17] = np.inf
    with pytest.raises(ValueError, match=r"index \(2, 17\)"):
        iir_filter(x, SF, 8.0, 30.0)
    good = np.zeros((4, 500))
    with pytest.raises(ValueError, match="Nyquist"):
        iir_filter(good, SF, 8.0, 90.0)
    with pytest.raises(ValueError, match="Nyquist"):
        fir_filter(good, SF, 0.0, 30.0)
    with pytest.raises(ValueError, match="Nyquist"):
        notch_filter(good, SF, 80.0)
    with pytest.raises(ValueError, match="order"):
        iir_filter(good, SF, 8.0, 30.0, order=40)
    with pytest.raises(ValueError, match="unstable"):
        sosfiltfilt(np.array([[1.0, 0.0, 0.0, 1.0, -2.1, 1.1]]), good)
    with pytest.raises(ValueError, match="l_freq < h_freq"):
        iir_filter(good, SF, 30.0, 8.0)
    with pytest.raises(TypeError, match="dtype"):
        fir_filter(good.astype(np.int32), SF, 8.0, 30.0)
    with pytest.raises(ValueError, match="1-D to 3-D|1-D or 2-D"):
        resample_poly(np.zeros((1, 1, 1, 5)), 2, 1)
    with pytest.raises(ValueError, match="too short"):
        iir_filter(np.zeros((2, 20)), SF, 8.0, 30.0)
    with pytest.raises(ValueError, match="3-D"):
        euclidean_alignment(good)
