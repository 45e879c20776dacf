"""Speaker-verification scoring: cosine scores, adaptive s-norm, EER and minDCF, DET plots.

Conventions follow the reference sheet (section 9) and WeSpeaker's ``score_metrics.py``: a trial is accepted
when its score is at least the threshold; EER is read where the piecewise-linear FRR and FAR curves cross;
minDCF is **normalised** by ``min(c_miss * p_target, c_fa * (1 - p_target))``. sigattn reports EER with minDCF
at ``p_target`` 0.01 and 0.05 (``c_miss = c_fa = 1``), always naming the trial list.

References:
    Desplanques et al., "ECAPA-TDNN", Interspeech 2020 (arXiv 2005.07143);
    Matejka et al., "Analysis of score normalization in multilingual speaker recognition", Interspeech 2017
    (adaptive s-norm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "as_norm",
    "cosine_scores",
    "det_curve",
    "eer",
    "error_rates",
    "min_dcf",
    "plot_det",
    "plot_score_histogram",
    "verification_metrics",
]


def _as_2d(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n, dim) of embeddings, got shape {a.shape}")
    return a


def _normalise(x: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    if mean is not None:
        x = x - np.asarray(mean, dtype=np.float64)[None, :]
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_scores(enroll: ArrayLike, test: ArrayLike, mean: ArrayLike | None = None) -> np.ndarray:
    """Cosine similarity of paired embeddings, after subtracting ``mean`` (embedding mean normalisation).

    Args:
        enroll: ``(n, D)`` enrolment embeddings.
        test: ``(n, D)`` test embeddings (row ``i`` is scored against ``enroll[i]``).
        mean: optional ``(D,)`` vector subtracted from both sides first (e.g. the training-set mean).

    Returns:
        ``(n,)`` float64 scores in ``[-1, 1]``.

    Example:
        >>> cosine_scores([[1.0, 0.0]], [[1.0, 1.0]]).round(4).tolist()
        [0.7071]
    """
    e, t = _as_2d(enroll, "enroll"), _as_2d(test, "test")
    if e.shape != t.shape:
        raise ValueError(f"cosine_scores: enroll {e.shape} and test {t.shape} must have the same shape")
    return np.sum(_normalise(e, mean) * _normalise(t, mean), axis=1)


def as_norm(
    scores: ArrayLike,
    enroll: ArrayLike,
    test: ArrayLike,
    cohort: ArrayLike,
    top_k: int = 300,
    mean: ArrayLike | None = None,
) -> np.ndarray:
    """Adaptive symmetric score normalisation (AS-norm, "adaptive s-norm").

    For each trial, the enrolment embedding is scored (cosine) against every cohort embedding; the mean
    ``mu_e`` and population std ``sigma_e`` of its ``top_k`` highest cohort scores give
    ``z_e = (s - mu_e) / sigma_e``; the same for the test side; the result is ``0.5 * (z_e + z_t)``.

    Args:
        scores: ``(n,)`` raw cosine scores of the trials.
        enroll: ``(n, D)`` enrolment embeddings of the trials.
        test: ``(n, D)`` test embeddings.
        cohort: ``(m, D)`` cohort embeddings (utterances or speaker means, disjoint from the trials).
        top_k: number of closest cohort scores used per side (clipped to ``m``).
        mean: optional ``(D,)`` mean subtracted before every cosine, as for the raw scores.

    Returns:
        ``(n,)`` normalised scores.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> e, t, c = rng.normal(size=(4, 8)), rng.normal(size=(4, 8)), rng.normal(size=(20, 8))
        >>> as_norm(cosine_scores(e, t), e, t, c, top_k=5).shape
        (4,)
    """
    s = np.asarray(scores, dtype=np.float64)
    e, t, c = _as_2d(enroll, "enroll"), _as_2d(test, "test"), _as_2d(cohort, "cohort")
    if s.shape != (e.shape[0],) or e.shape != t.shape:
        raise ValueError(
            f"as_norm: scores {s.shape}, enroll {e.shape}, test {t.shape} do not describe n trials"
        )
    if c.shape[1] != e.shape[1]:
        raise ValueError(f"as_norm: cohort dim {c.shape[1]} differs from embedding dim {e.shape[1]}")
    if top_k < 1:
        raise ValueError(f"as_norm: top_k must be >= 1, got {top_k}")
    k = min(int(top_k), c.shape[0])
    cn = _normalise(c, mean)

    def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sc = _normalise(x, mean) @ cn.T
        top = -np.partition(-sc, k - 1, axis=1)[:, :k]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-12)

    mu_e, sd_e = stats(e)
    mu_t, sd_t = stats(t)
    return 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)


def error_rates(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FRR and FAR at every distinct threshold.

    A trial is accepted when ``score >= threshold``. With the distinct scores sorted ascending
    ``u_1 < ... < u_m``, threshold ``k`` (``k = 0..m``) rejects the trials scoring below ``u_{k+1}``
    (``u_{m+1} = +inf``): ``FRR_k = P(target < u_{k+1})``, ``FAR_k = P(non-target >= u_{k+1})``.

    Args:
        scores: ``(n,)`` trial scores (higher = more likely the same speaker).
        labels: ``(n,)`` 1/True for target (same speaker), 0/False for non-target trials.

    Returns:
        ``(frr, far, thresholds)``, each of length ``m + 1``; FRR rises from 0 to 1, FAR falls from 1 to 0.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must have the same length")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain NaN/Inf at trial {int(np.flatnonzero(~np.isfinite(s))[0])}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"labels must be 0/1, got values {np.unique(y)[:5].tolist()}")
    y = y.astype(bool)
    n_t, n_n = int(y.sum()), int((~y).sum())
    if n_t == 0 or n_n == 0:
        raise ValueError(f"need both target and non-target trials, got {n_t} targets and {n_n} non-targets")
    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[s[1:] != s[:-1], True]  # last position of each group of tied scores
    cum_t = np.cumsum(y)[last]
    cum_n = np.cumsum(~y)[last]
    frr = np.r_[0.0, cum_t / n_t]
    far = np.r_[1.0, 1.0 - cum_n / n_n]
    thresholds = np.r_[s[last], np.inf]
    return frr, far, thresholds


def eer(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold, where the piecewise-linear FRR and FAR curves cross.

    Returns:
        ``(eer, threshold)``; ``eer`` is a fraction in ``[0, 1]`` (multiply by 100 for percent).

    Example:
        >>> eer([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0])[0]
        0.5
    """
    frr, far, thr = error_rates(scores, labels)
    k = int(np.argmax(frr >= far))  # first index where the curves have crossed (exists: frr[-1]=1, far[-1]=0)
    if k == 0 or frr[k] == far[k]:
        return float(frr[k]), float(thr[k])
    d0, d1 = far[k - 1] - frr[k - 1], far[k] - frr[k]  # d0 > 0 >= d1
    a = d0 / (d0 - d1)
    value = frr[k - 1] + a * (frr[k] - frr[k - 1])
    lo, hi = thr[k - 1], thr[k] if np.isfinite(thr[k]) else thr[k - 1]
    return float(value), float(lo + a * (hi - lo))


def min_dcf(
    scores: ArrayLike, labels: ArrayLike, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> tuple[float, float]:
    """Normalised minimum detection cost and its threshold.

    ``C_det(t) = c_miss * FRR(t) * p_target + c_fa * FAR(t) * (1 - p_target)``; the minimum over thresholds
    is divided by ``min(c_miss * p_target, c_fa * (1 - p_target))`` (SpeechBrain's ``minDCF`` is the
    unnormalised numerator).

    Example:
        >>> round(min_dcf([0.9, 0.8, 0.3, 0.5, 0.2, 0.1], [1, 1, 1, 0, 0, 0])[0], 4)
        0.3333
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must lie in (0, 1), got {p_target}")
    frr, far, thr = error_rates(scores, labels)
    cost = c_miss * frr * p_target + c_fa * far * (1.0 - p_target)
    k = int(np.argmin(cost))
    return float(cost[k] / min(c_miss * p_target, c_fa * (1.0 - p_target))), float(thr[k])


def verification_metrics(scores: ArrayLike, labels: ArrayLike, prefix: str = "") -> dict[str, float]:
    """EER (%) and normalised minDCF at p_target 0.01 and 0.05 (c_miss = c_fa = 1) in one dict."""
    e, thr = eer(scores, labels)
    return {
        f"{prefix}eer": 100.0 * e,
        f"{prefix}eer_threshold": thr,
        f"{prefix}min_dcf_p01": min_dcf(scores, labels, 0.01)[0],
        f"{prefix}min_dcf_p05": min_dcf(scores, labels, 0.05)[0],
    }


def det_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(far, frr)`` points of the detection error trade-off curve (fractions)."""
    frr, far, _ = error_rates(scores, labels)
    return far, frr


def plot_det(scores: ArrayLike, labels: ArrayLike, path: str | Path, title: str = "DET") -> Path:
    """Write a DET curve (probit axes, in %) to ``path`` as PNG and return the path."""
    from scipy.stats import norm

    from sigattn.plotting import pyplot, save_png

    plt = pyplot()

    far, frr = det_curve(scores, labels)
    clip = lambda v: np.clip(v, 1e-4, 1 - 1e-4)  # noqa: E731
    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(norm.ppf(clip(far)), norm.ppf(clip(frr)))
    e = eer(scores, labels)[0]
    ax.plot([norm.ppf(clip(e))], [norm.ppf(clip(e))], "o", label=f"EER {100 * e:.2f}%")
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    lim = norm.ppf([5e-4, 0.5])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, path)


def plot_score_histogram(
    scores: ArrayLike, labels: ArrayLike, path: str | Path, title: str = "scores"
) -> Path:
    """Write histograms of target and non-target scores to ``path`` as PNG."""
    from sigattn.plotting import pyplot, save_png

    plt = pyplot()

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(s.min(), s.max(), 50)
    ax.hist(s[~y], bins=bins, alpha=0.6, density=True, label=f"non-target ({int((~y).sum())})")
    ax.hist(s[y], bins=bins, alpha=0.6, density=True, label=f"target ({int(y.sum())})")
    ax.set_xlabel("score")
    ax.set_title(title)
    ax.legend()
    return save_png(fig, path)
