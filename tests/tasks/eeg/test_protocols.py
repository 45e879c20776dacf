"""Protocols (splits, CV, LOSO, validation carving) and metrics against scikit-learn / hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score, confusion_matrix
from sklearn.model_selection import KFold, LeaveOneGroupOut

from sigattn.tasks.eeg import protocols as P


def test_chronological_split_is_first_80_percent_per_class():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat([0, 1], 72))  # BNCI2014001 session T, 2 classes
    f = P.chronological_split(y, 0.8)
    for k in (0, 1):
        idx = np.flatnonzero(y == k)
        n_train = math.ceil(72 * 0.8)  # 58, DBConformer's nsamples
        assert set(f.train[y[f.train] == k]) == set(idx[:n_train])
        assert set(f.test[y[f.test] == k]) == set(idx[n_train:])
    assert len(f.train) == 116 and len(f.test) == 28
    assert not set(f.train) & set(f.test)


def test_kfold_matches_sklearn_unshuffled():
    for n, k in [(45, 5), (144, 5), (11, 3)]:
        ours = P.chronological_kfold(n, k)
        ref = list(KFold(k, shuffle=False).split(np.zeros(n)))
        assert len(ours) == k
        for f, (tr, te) in zip(ours, ref):
            np.testing.assert_array_equal(f.train, tr)
            np.testing.assert_array_equal(f.test, te)


def test_loso_matches_sklearn():
    groups = np.array([3, 3, 1, 1, 2, 2, 2])
    ours = P.make_folds("loso", np.zeros(7, int), subject=groups)
    ref = list(LeaveOneGroupOut().split(np.zeros(7), groups=groups))
    for f, (tr, te) in zip(ours, ref):
        np.testing.assert_array_equal(f.train, tr)
        np.testing.assert_array_equal(f.test, te)


def test_within_subject_folds_merge_subjects_and_never_mix():
    y = np.tile([0, 1], 20)
    subject = np.repeat([0, 1], 20)
    folds = P.make_folds("kfold", y, subject=subject, n_splits=5)
    assert len(folds) == 5
    covered = np.concatenate([f.test for f in folds])
    np.testing.assert_array_equal(np.sort(covered), np.arange(40))
    for f in folds:
        for s in (0, 1):  # each subject contributes a contiguous block of its own trials
            te = f.test[subject[f.test] == s]
            assert len(te) == 4 and np.all(np.diff(te) == 1)


def test_cross_session_and_errors():
    y = np.tile([0, 1], 6)
    session = np.repeat([0, 1], 6)
    folds = P.make_folds("cross_session", y, session=session)
    assert [f.test.tolist() for f in folds] == [list(range(6)), list(range(6, 12))]
    with pytest.raises(ValueError, match="needs a session"):
        P.make_folds("cross_session", y)
    with pytest.raises(ValueError, match="unknown protocol 'cv'; valid"):
        P.make_folds("cv", y)
    with pytest.raises(ValueError, match="class 1 has 1 trial"):
        P.chronological_split([0, 0, 0, 1])


def test_validation_split_comes_from_training_part_only():
    y = np.tile([0, 1], 25)
    f = P.chronological_split(y)
    tr, va = P.validation_split(f.train, y, 0.2)
    assert set(tr) | set(va) == set(f.train) and not set(va) & set(f.test) and not set(tr) & set(va)
    for k in (0, 1):  # the validation trials are the latest training trials of each class
        assert va[y[va] == k].min() > tr[y[tr] == k].max()
    tr0, va0 = P.validation_split(f.train, y, 0.0)
    assert len(va0) == 0 and len(tr0) == len(f.train)


def test_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    for n_classes in (2, 4):
        y = rng.integers(0, n_classes, 200)
        pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, n_classes, 200))
        m = P.classification_metrics(y, pred, n_classes)
        assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
        assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
        np.testing.assert_array_equal(P.confusion(y, pred, n_classes), confusion_matrix(y, pred))


def test_summarize_mean_std():
    s = P.summarize([{"accuracy": 0.5, "kappa": 0.0}, {"accuracy": 0.7, "kappa": 0.4}])
    assert s["accuracy"] == pytest.approx((0.6, 0.1)) and s["kappa"] == pytest.approx((0.2, 0.2))
    assert P.format_summary(s) == "accuracy 60.0 +- 10.0, kappa 0.200 +- 0.200"
