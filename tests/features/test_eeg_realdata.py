"""The EEG chain on real PhysioNet eegmmidb data (S001, imagined left/right fist, run 4) vs MNE and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from sigattn.data_paths import shared_data_dir
from sigattn.features import epochs_from_events, euclidean_alignment, fir_filter, iir_filter

mne = pytest.importorskip("mne")
mne.set_log_level("ERROR")


@pytest.fixture(scope="module")
def raw():
    root = shared_data_dir()
    path = None if root is None else root / "eeg" / "eegmmidb" / "S001R04.edf"
    if path is None or not path.is_file():
        pytest.skip("../shared/data/eeg/eegmmidb/S001R04.edf is absent (set SIGATTN_DATA_DIR)")
    return mne.io.read_raw_edf(path, preload=True)


@pytest.mark.realdata
def test_real_eeg_chain_matches_mne(raw):
    sf = raw.info["sfreq"]
    data = raw.get_data()[:, : int(60 * sf)]  # 64 channels x 60 s
    assert data.shape[0] == 64 and sf == 160.0
    ref = mne.filter.filter_data(data, sf, 8.0, 30.0)
    ours = fir_filter(data, sf, 8.0, 30.0)
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()
    sos = signal.butter(4, [8.0, 30.0], btype="bandpass", output="sos", fs=sf)
    iir_ref = signal.sosfiltfilt(sos, data)
    assert np.abs(iir_filter(data, sf, 8.0, 30.0) - iir_ref).max() <= 1e-6 * np.abs(iir_ref).max()

    events, ids = mne.events_from_annotations(raw.copy().crop(0, 60 - 1 / sf))
    keep = {k: v for k, v in ids.items() if k in ("T1", "T2")}
    events = events[np.isin(events[:, 2], list(keep.values()))]
    events = events[events[:, 0] + int(4.0 * sf) < data.shape[1]]
    filtered = mne.io.RawArray(ref, raw.info)
    ep_ref = mne.Epochs(filtered, events, keep, tmin=0.0, tmax=4.0, baseline=None, preload=True).get_data()
    ep = epochs_from_events(ours, events, sf, 0.0, 4.0, event_id=keep)
    assert ep.shape == ep_ref.shape and ep.shape[0] >= 5
    assert np.abs(ep - ep_ref).max() <= 1e-5 * np.abs(ep_ref).max()
    aligned, _ = euclidean_alignment(ep)
    cov = np.mean(aligned @ aligned.transpose(0, 2, 1), axis=0)
    np.testing.assert_allclose(cov, np.eye(64), atol=1e-6)
