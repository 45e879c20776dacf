"""Synthetic motor imagery: ground-truth ERD at C3/C4 (checked with SciPy's Welch PSD), montage, subjects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from sigattn.synthetic import make_motor_imagery
from sigattn.synthetic.motor_imagery import EEGMMIDB_CHANNELS, electrode_positions


def _mu_power(x: np.ndarray, sfreq: float) -> np.ndarray:
    f, p = welch(x, fs=sfreq, nperseg=64, axis=-1)
    return p[..., (f >= 8) & (f <= 13)].mean(-1)


def test_shapes_labels_and_determinism():
    d = make_motor_imagery(n_subjects=2, n_trials_per_class=6, sfreq=64, duration=1.5, seed=3)
    assert d.X.shape == (24, 22, 96) and d.X.dtype == np.float32
    assert np.bincount(d.y).tolist() == [12, 12] and d.subject.tolist() == [0] * 12 + [1] * 12
    assert d.informative == ("C3", "C4") and d.class_names == ("left_hand", "right_hand")
    np.testing.assert_array_equal(d.X, make_motor_imagery(n_subjects=2, n_trials_per_class=6, sfreq=64,
                                                          duration=1.5, seed=3).X)  # fmt: skip
    assert np.isfinite(d.X).all()


def test_contralateral_desynchronisation_at_c3_c4():
    d = make_motor_imagery(n_subjects=1, n_trials_per_class=40, seed=0, subject_variability=0.0)
    c3, c4, fz = (d.ch_names.index(c) for c in ("C3", "C4", "Fz"))
    p = _mu_power(d.X, d.sfreq)
    left, right = d.y == 0, d.y == 1
    # left-hand imagery weakens mu over the right hemisphere (C4), right-hand over C3
    assert p[left, c4].mean() < 0.6 * p[right, c4].mean()
    assert p[right, c3].mean() < 0.6 * p[left, c3].mean()
    # a frontal electrode carries no class difference
    assert abs(np.log(p[left, fz].mean() / p[right, fz].mean())) < 0.2


def test_three_classes_feet_at_cz():
    d = make_motor_imagery(n_subjects=1, n_trials_per_class=30, n_classes=3, seed=1, subject_variability=0.0)
    cz = d.ch_names.index("Cz")
    p = _mu_power(d.X, d.sfreq)[:, cz]
    assert p[d.y == 2].mean() < 0.7 * p[d.y != 2].mean() and d.informative == ("C3", "C4", "Cz")


def test_subjects_differ_in_channel_gains():
    d = make_motor_imagery(n_subjects=2, n_trials_per_class=20, seed=0, subject_variability=0.5)
    v0 = d.X[d.subject == 0].var(axis=(0, 2))
    v1 = d.X[d.subject == 1].var(axis=(0, 2))
    assert np.abs(np.log(v0 / v1)).max() > 0.5


def test_positions_close_to_mne_standard_1005():
    mne = pytest.importorskip("mne")
    from sigattn.tasks.eeg.io import make_montage

    pos = make_montage("standard_1005").get_positions()["ch_pos"]
    q = np.array([pos[n] for n in EEGMMIDB_CHANNELS])
    a = np.c_[2 * q, np.ones(len(q))]
    centre = np.linalg.lstsq(a, (q**2).sum(1), rcond=None)[0][:3]  # sphere fit
    q = (q - centre) / np.linalg.norm(q - centre, axis=1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip((electrode_positions(EEGMMIDB_CHANNELS) * q).sum(1), -1, 1)))
    assert np.median(ang) < 8 and ang.max() < 12
    assert mne is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_classes must be 2 or 3"):
        make_motor_imagery(n_classes=4)
    with pytest.raises(ValueError, match="unknown montage 'x'"):
        make_motor_imagery(montage="x")
    with pytest.raises(ValueError, match="montage lacks C3"):
        make_motor_imagery(montage=("Fz", "Cz", "C4"))
    with pytest.raises(ValueError, match="not a 10-10 name"):
        electrode_positions(["M1x"])
