"""Evaluation protocols and metrics for trial-wise EEG decoding.

The settings follow DBConformer (Wang et al., IEEE JBHI 2026, arXiv 2506.21140) and MOABB (Chevallier et al.
2024, arXiv 2404.15319):

* ``chronological``: within subject, the first ``train_fraction`` of each class's trials train, the rest test
  (DBConformer's "CO"; ``ceil(n_class * 0.8)`` training trials per class);
* ``kfold``: within subject, ``k`` contiguous chronological folds (scikit-learn ``KFold(shuffle=False)``;
  DBConformer's "CV");
* ``loso``: leave one subject out (train on all the others);
* ``cross_session``: leave one session out, within subject.

Unlike DBConformer, which reports the test accuracy after the final epoch, sigattn selects the checkpoint on
a validation split carved from the **training** part (:func:`validation_split`), never from the test part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sigattn.utils import summarize  # noqa: F401 - {metric: (mean, std)} over folds/seeds, used here

PROTOCOLS = ("chronological", "kfold", "loso", "cross_session")


@dataclass(frozen=True)
class Fold:
    """One train/test split; indices point into the trial arrays (chronological order kept)."""

    name: str
    train: np.ndarray
    test: np.ndarray


def _as_labels(y: Sequence[int] | np.ndarray, what: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {y.shape}")
    return y


def chronological_split(y: Sequence[int] | np.ndarray, train_fraction: float = 0.8) -> Fold:
    """First ``ceil(n_k * train_fraction)`` trials of each class train, the remaining ones test.

    Args:
        y: labels in recording order.
        train_fraction: share of each class used for training, in (0, 1).

    Example:
        >>> f = chronological_split([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 0.8)
        >>> f.train.tolist(), f.test.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    y = _as_labels(y)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    train, test = [], []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        n_train = min(math.ceil(len(idx) * train_fraction), len(idx) - 1)
        if n_train < 1:
            raise ValueError(f"class {k.tolist()!r} has {len(idx)} trial(s): too few for a train/test split")
        train.append(idx[:n_train])
        test.append(idx[n_train:])
    return Fold("chronological", np.sort(np.concatenate(train)), np.sort(np.concatenate(test)))


def chronological_kfold(n_trials: int, n_splits: int = 5) -> list[Fold]:
    """Contiguous folds in recording order, like ``sklearn.model_selection.KFold(n_splits, shuffle=False)``.

    Example:
        >>> folds = chronological_kfold(5, 2)
        >>> folds[0].test.tolist(), folds[1].test.tolist()
        ([0, 1, 2], [3, 4])
    """
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if n_trials < n_splits:
        raise ValueError(f"cannot make {n_splits} folds from {n_trials} trials")
    sizes = np.full(n_splits, n_trials // n_splits)
    sizes[: n_trials % n_splits] += 1
    folds, start, all_idx = [], 0, np.arange(n_trials)
    for i, size in enumerate(sizes):
        test = all_idx[start : start + size]
        folds.append(Fold(f"fold{i}", np.concatenate([all_idx[:start], all_idx[start + size :]]), test))
        start += size
    return folds


def leave_one_group_out(groups: Sequence[int] | np.ndarray, prefix: str = "subject") -> list[Fold]:
    """One fold per distinct group (subject for LOSO, session for cross-session), tested on that group."""
    groups = _as_labels(groups, "groups")
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise ValueError(f"leave-one-{prefix}-out needs >= 2 {prefix}s, got {uniq.tolist()}")
    return [Fold(f"{prefix}{g}", np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in uniq]


def make_folds(
    protocol: str,
    y: Sequence[int] | np.ndarray,
    *,
    subject: Sequence[int] | np.ndarray | None = None,
    session: Sequence[int] | np.ndarray | None = None,
    n_splits: int = 5,
    train_fraction: float = 0.8,
) -> list[Fold]:
    """The folds of ``protocol`` (one of :data:`PROTOCOLS`) over trials in recording order.

    Within-subject protocols (``chronological``, ``kfold``, ``cross_session``) are applied per subject and the
    folds of all subjects with the same position are merged (fold ``i`` tests every subject's ``i``-th block).
    """
    y = _as_labels(y)
    subject = np.zeros(len(y), dtype=int) if subject is None else _as_labels(subject, "subject")
    if len(subject) != len(y):
        raise ValueError(f"subject has {len(subject)} entries but y has {len(y)}")
    if protocol == "loso":
        return leave_one_group_out(subject, "subject")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if protocol == "cross_session" and session is None:
        raise ValueError("protocol 'cross_session' needs a session array")
    per_subject: list[list[Fold]] = []
    for s in np.unique(subject):
        idx = np.flatnonzero(subject == s)
        if protocol == "chronological":
            folds = [chronological_split(y[idx], train_fraction)]
        elif protocol == "kfold":
            folds = chronological_kfold(len(idx), n_splits)
        else:
            folds = leave_one_group_out(np.asarray(session)[idx], "session")
        per_subject.append([Fold(f.name, idx[f.train], idx[f.test]) for f in folds])
    n = min(len(f) for f in per_subject)
    return [
        Fold(
            per_subject[0][i].name,
            np.sort(np.concatenate([f[i].train for f in per_subject])),
            np.sort(np.concatenate([f[i].test for f in per_subject])),
        )
        for i in range(n)
    ]


def validation_split(
    train_idx: np.ndarray, y: Sequence[int] | np.ndarray, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Carve a validation set from the training indices: the last ``fraction`` of each class (chronological).

    Returns ``(train, val)``; ``fraction == 0`` returns ``(train_idx, empty)``. The test part is never touched.
    """
    train_idx = np.asarray(train_idx)
    if fraction == 0:
        return train_idx, train_idx[:0]
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    y = np.asarray(y)[train_idx]
    tr, va = [], []
    for k in np.unique(y):
        idx = train_idx[y == k]
        n_val = max(1, int(round(len(idx) * fraction)))
        if n_val >= len(idx):
            raise ValueError(
                f"class {k.tolist()!r} has {len(idx)} training trial(s): too few to carve a validation split"
            )
        tr.append(idx[:-n_val])
        va.append(idx[-n_val:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


# ----------------------------------------------------------------------------------------------- metrics
def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Confusion matrix ``M[true, pred]`` (counts)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    n = n_classes or int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> dict:
    """Accuracy, balanced accuracy (mean recall over present classes) and Cohen's kappa.

    Example:
        >>> classification_metrics([0, 0, 1, 1], [0, 1, 1, 1])
        {'accuracy': 0.75, 'balanced_accuracy': 0.75, 'kappa': 0.5}
    """
    m = confusion(y_true, y_pred, n_classes).astype(float)
    n = m.sum()
    if n == 0:
        raise ValueError("classification_metrics: no predictions")
    acc = np.trace(m) / n
    support = m.sum(axis=1)
    present = support > 0
    bal = float(np.mean(np.diag(m)[present] / support[present]))
    pe = float((m.sum(axis=0) * support).sum() / n**2)
    kappa = 0.0 if pe == 1.0 else (acc - pe) / (1.0 - pe)
    return {"accuracy": float(acc), "balanced_accuracy": bal, "kappa": float(kappa)}


def format_summary(summary: dict[str, tuple[float, float]], percent: bool = True) -> str:
    """``"accuracy 81.2 +- 3.4, ..."`` (percent for accuracy-like metrics, kappa as is)."""
    parts = []
    for k, (m, s) in summary.items():
        scale = 100.0 if percent and k != "kappa" else 1.0
        parts.append(
            f"{k} {m * scale:.{1 if scale == 100 else 3}f} +- {s * scale:.{1 if scale == 100 else 3}f}"
        )
    return ", ".join(parts)
