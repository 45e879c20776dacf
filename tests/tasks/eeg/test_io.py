"""MNE loading of real eegmmidb EDF files and the errors on bad input (each names the file)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from sigattn.data_paths import shared_data_dir

mne = pytest.importorskip("mne")
from sigattn.tasks.eeg.datasets import load_eegmmidb, load_moabb  # noqa: E402
from sigattn.tasks.eeg.io import clean_channel_names, load_epochs, load_raw  # noqa: E402

ROOT = shared_data_dir()
EEG = ROOT / "eeg" / "eegmmidb" if ROOT else None
needs_data = pytest.mark.skipif(
    EEG is None or not (EEG / "S001R04.edf").exists(), reason="../shared/data/eeg/eegmmidb is absent"
)
pytestmark = pytest.mark.realdata


def test_clean_channel_names_matches_mne_eegbci_standardize():
    labels = ["Fc5.", "Fcz.", "C3..", "Cpz.", "Fp1.", "Afz.", "Ft7.", "T10.", "Tp8.", "Po3.", "Oz..", "Iz.."]
    info = mne.create_info(labels, 160.0, "eeg")
    raw = mne.io.RawArray(np.zeros((len(labels), 10)), info, verbose="error")
    mne.datasets.eegbci.standardize(raw)
    assert clean_channel_names(labels) == raw.ch_names


@needs_data
def test_epochs_match_mne_epochs_and_scipy_filter():
    f = EEG / "S001R04.edf"
    d = load_epochs([f], {"T1": 0, "T2": 1}, tmin=0.0, tmax=2.0, l_freq=None, h_freq=None)
    raw = mne.io.read_raw_edf(f, preload=True, verbose="error")
    mne.datasets.eegbci.standardize(raw)
    events, ids = mne.events_from_annotations(raw, event_id={"T1": 1, "T2": 2}, verbose="error")
    ep = mne.Epochs(raw, events, ids, tmin=0.0, tmax=2.0, baseline=None, preload=True, verbose="error")
    assert d["ch_names"] == raw.ch_names and d["sfreq"] == 160.0
    np.testing.assert_allclose(d["X"], ep.get_data() * 1e6, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(d["y"], ep.events[:, 2] - 1)
    # band-passed: zero-phase Butterworth on the continuous signal, then epochs
    d2 = load_epochs([f], {"T1": 0, "T2": 1}, tmin=0.0, tmax=2.0, l_freq=8.0, h_freq=30.0)
    sos = butter(4, [8.0, 30.0], btype="bandpass", fs=160.0, output="sos")
    cont = sosfiltfilt(sos, raw.get_data() * 1e6, axis=-1)
    i = int(events[3, 0])
    np.testing.assert_allclose(d2["X"][3], cont[:, i : i + 321], rtol=1e-4, atol=1e-2)


@needs_data
def test_eegmmidb_left_right_and_resampling(tmp_path):
    t = load_eegmmidb(EEG, [1], "left_right", tmin=0.0, tmax=4.0, sfreq=80.0, cache_dir=tmp_path)
    assert t.X.shape == (45, 64, 321) and t.sfreq == 80.0
    assert sorted(np.unique(t.run)) == [4, 8, 12] and t.class_names == ["left_fist", "right_fist"]
    assert {"C3", "C4", "Cz", "FCz", "AFz", "Iz"} <= set(t.ch_names)
    assert np.bincount(t.y).tolist() == [23, 22]
    again = load_eegmmidb(EEG, [1], "left_right", tmin=0.0, tmax=4.0, sfreq=80.0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    np.testing.assert_array_equal(again.X, t.X)
    with pytest.raises(ValueError, match="unknown eegmmidb task"):
        load_eegmmidb(EEG, [1], "both")
    with pytest.raises(FileNotFoundError, match="S002R04.edf"):
        load_eegmmidb(EEG, [2])


@needs_data
def test_bad_files_are_named(tmp_path):
    src = EEG / "S001R04.edf"
    raw = mne.io.read_raw_edf(src, preload=True, verbose="error").crop(0, 20)
    fewer = tmp_path / "fewer_raw.fif"
    raw.copy().drop_channels(["C3.."]).save(fewer, verbose="error")
    with pytest.raises(ValueError, match=r"fewer_raw\.fif: missing channels \['C3'\]"):
        load_epochs([src, fewer], {"T1": 0, "T2": 1}, tmax=2.0)
    slow = tmp_path / "slow_raw.fif"
    raw.copy().resample(128.0, verbose="error").save(slow, verbose="error")
    with pytest.raises(ValueError, match=r"slow_raw\.fif: sampling rate 128.0 Hz differs from 160.0 Hz"):
        load_epochs([src, slow], {"T1": 0, "T2": 1}, tmax=2.0)
    with pytest.raises(ValueError, match=r"S001R01\.edf: no events \['T1'\]"):
        load_epochs([EEG / "S001R01.edf"], {"T1": 0})
    nan = tmp_path / "nan_raw.fif"
    bad = raw.copy()
    bad._data[5, 800:900] = np.nan
    bad.save(nan, verbose="error")
    with pytest.raises(
        ValueError, match=r"nan_raw\.fif: 100 non-finite samples \(first in channel 'FC4' at 5\.000 s\)"
    ):
        load_epochs([nan], {"T1": 0, "T2": 1}, tmax=2.0)
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(ValueError, match=r"notes\.txt: unsupported EEG file type"):
        load_raw(txt)
    with pytest.raises(ValueError, match=r"exceeds the recording"):
        load_epochs([src], {"T1": 0, "T2": 1}, tmax=30.0)


def test_moabb_adapter_with_moabb_fake_dataset():
    pytest.importorskip("moabb")
    from moabb.datasets import FakeDataset
    from moabb.paradigms import MotorImagery

    t = load_moabb("FakeDataset", [1], n_classes=3)
    X, labels, meta = MotorImagery(n_classes=3, fmin=8.0, fmax=32.0).get_data(FakeDataset(), [1])
    # FakeDataset draws new random signals per instance: compare layout, labels and metadata
    assert t.X.shape == X.shape and t.X.dtype == np.float32 and np.isfinite(t.X).all()
    assert t.class_names == ["fake1", "fake2", "fake3"] and t.ch_names == ["C3", "Cz", "C4"]
    assert sorted(np.bincount(t.y).tolist()) == sorted(np.unique(labels, return_counts=True)[1].tolist())
    assert set(t.session.tolist()) == {0, 1} and (t.subject == 1).all() and t.sfreq == 128.0
    with pytest.raises(ValueError, match="unknown MOABB dataset 'NoSuch'"):
        load_moabb("NoSuch")
