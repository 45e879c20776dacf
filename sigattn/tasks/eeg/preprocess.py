"""Signal preprocessing used by the EEG task: band-pass, resampling, Euclidean alignment.

Thin adapters over the Numba kernels of ``sigattn.features``. Euclidean alignment follows He & Wu, "Transfer
Learning for Brain-Computer Interfaces: A Euclidean Space Data Alignment Approach", IEEE TBME 67(2), 2020:
``R = mean_i cov(X_i)``, ``X_i <- R^{-1/2} X_i``, per subject/session (offline), or causally with the running
mean of the covariances seen so far (online, DBConformer's ``EA_online``: update, then align). As in
DBConformer, ``cov`` is ``np.cov`` (centred, divided by ``T - 1``), so aligned signals have unit variance per
sample (``X X^T`` of the paper would scale them by ``1/sqrt(T)``, too small for the spatial tokeniser's ELU).
"""

from __future__ import annotations

import numpy as np

from sigattn.features import OnlineEuclideanAlignment, euclidean_alignment, iir_filter, resample_poly


def bandpass(
    x: np.ndarray, sfreq: float, l_freq: float | None, h_freq: float | None, order: int = 4
) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis (``None`` edges give high-/low-pass).

    Example:
        >>> bandpass(np.zeros((2, 400)), 160.0, 8.0, 30.0).shape
        (2, 400)
    """
    if l_freq is None and h_freq is None:
        return x
    return np.asarray(iir_filter(np.ascontiguousarray(x), sfreq, l_freq, h_freq, order=order))


def resample(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Polyphase resampling by ``up / down`` along the last axis (SciPy's ``resample_poly`` semantics)."""
    if up == down:
        return x
    return np.asarray(resample_poly(np.ascontiguousarray(x), up, down, axis=-1))


def align_offline(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offline Euclidean alignment of trials ``(n, C, T)``: returns ``(aligned, R^{-1/2})``.

    Example:
        >>> X = np.random.default_rng(0).standard_normal((10, 3, 50))
        >>> A, _ = align_offline(X)
        >>> bool(np.allclose(np.mean([np.cov(a) for a in A], axis=0), np.eye(3)))
        True
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"align_offline expects trials (n, C, T), got shape {X.shape}")
    A, r = euclidean_alignment(np.ascontiguousarray(X), covariance="cov")
    return np.asarray(A), np.asarray(r)


def align_online(X: np.ndarray) -> np.ndarray:
    """Causal Euclidean alignment: trial ``k`` uses the mean covariance of trials ``0..k`` (label-free)."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"align_online expects trials (n, C, T), got shape {X.shape}")
    ea = OnlineEuclideanAlignment(covariance="cov")
    return np.stack([np.asarray(ea(np.ascontiguousarray(t))) for t in X]).astype(X.dtype)
