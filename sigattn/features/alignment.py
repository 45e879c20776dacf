"""Euclidean alignment (EA) of EEG trials, offline and online (causal).

H. He and D. Wu, "Transfer Learning for Brain-Computer Interfaces: A Euclidean Space Data Alignment
Approach", IEEE TBME 67(2):399-410, 2020. Offline, for the trials ``X_i (C, T)`` of one domain (subject or
session): ``R = (1/n) sum_i X_i X_i^T`` and ``X~_i = R^{-1/2} X_i``, so that the aligned trials' mean
covariance is the identity. Online (DBConformer's ``EA_online``): ``R_k = (k R_{k-1} + cov(X_k)) / (k + 1)``
and trial k is aligned with ``R_k^{-1/2}``. ``covariance="cov"`` uses ``np.cov`` (centred, / (T - 1)) as
DBConformer does; the default ``"xxt"`` is the paper's ``X X^T``. Covariances and the alignment are batched
BLAS products in the trials' dtype (in cache-sized blocks of trials) and ``R^{-1/2}`` comes from a symmetric
eigendecomposition (no Numba kernel is needed here).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from ._core import as_float_array, check_finite, thread_pool, torch_threads

__all__ = ["OnlineEuclideanAlignment", "euclidean_alignment", "inv_sqrtm"]

# trials per block of the in-place product and of the covariance sums: ~1 MiB (cache resident)
BLOCK_BYTES = 1 << 20


def _covariances(x: np.ndarray, covariance: str) -> np.ndarray:
    """Per-trial ``X X^T`` or ``np.cov(X)`` of ``(n, C, T)`` trials (batched BLAS products in ``x``'s dtype)."""
    if covariance not in ("xxt", "cov"):
        raise ValueError(f"covariance must be 'xxt' or 'cov', got {covariance!r}")
    if covariance == "cov":
        if x.shape[-1] < 2:
            raise ValueError(f"covariance='cov' needs at least 2 time samples, got {x.shape[-1]}")
        x = x - x.mean(axis=-1, keepdims=True)
    out = np.matmul(x, x.transpose(0, 2, 1))
    return out / (x.shape[-1] - 1) if covariance == "cov" else out


def _mean_covariance(x: np.ndarray, covariance: str) -> np.ndarray:
    """Float64 mean of the per-trial covariances, in cache-sized blocks of trials (torch/MKL batched products:
    measured ~20% faster than NumPy's OpenBLAS here). Per-block sums are added in block order, so the result
    does not depend on the thread count."""
    if covariance == "cov":
        return _covariances(x, covariance).mean(axis=0, dtype=np.float64)
    xt = _tensor(x)
    starts = list(range(0, x.shape[0], _block_trials(x)))
    parts = torch.zeros((len(starts), x.shape[1], x.shape[1]), dtype=torch.float64)

    def block(i: int, b0: int, b1: int) -> None:
        blk = xt[b0:b1]
        parts[i] = torch.matmul(blk, blk.transpose(1, 2)).sum(dim=0, dtype=torch.float64)

    _over_blocks(x.shape[0], starts, block)
    return (parts.sum(dim=0) / x.shape[0]).numpy()


def _over_blocks(n: int, starts: list[int], fn) -> None:
    """``fn(i, b0, b1)`` for the blocks of trials ``[starts[i], starts[i+1])``; with several torch threads, on
    sigattn's persistent pool of Python threads, one torch thread each (the FIR uses the same pool; torch's
    own threads measured 1.7x slower right after that pool had run torch work, 13 vs 8 ms per 600 s)."""
    jobs = list(zip(range(len(starts)), starts, [*starts[1:], n]))
    n_threads = min(torch.get_num_threads(), len(jobs))
    if n_threads <= 1:
        for job in jobs:
            fn(*job)
        return
    with torch_threads(1):
        list(thread_pool(n_threads).map(lambda job: fn(*job), jobs))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` that also takes read-only arrays (only read here) without torch's warning."""
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _block_trials(x: np.ndarray) -> int:
    return max(1, BLOCK_BYTES // max(1, x[0].nbytes))


def _apply(r_inv: np.ndarray, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[i] = r_inv @ x[i]`` in ``x``'s dtype; ``out`` may be ``x`` (in place, through a block buffer)."""
    w = torch.from_numpy(r_inv.astype(x.dtype))
    xt = _tensor(x)
    ot = torch.from_numpy(out)
    step = _block_trials(x)
    local = threading.local()  # one block buffer per thread (blocks may run on pool threads)

    def block(i: int, b0: int, b1: int) -> None:
        if out is not x:
            torch.matmul(w, xt[b0:b1], out=ot[b0:b1])
            return
        tmp = getattr(local, "tmp", None)
        if tmp is None:
            tmp = local.tmp = torch.empty((min(step, x.shape[0]), *x.shape[1:]), dtype=xt.dtype)
        t = tmp[: b1 - b0]
        torch.matmul(w, xt[b0:b1], out=t)
        xt[b0:b1].copy_(t)

    _over_blocks(x.shape[0], list(range(0, x.shape[0], step)), block)
    return out


def inv_sqrtm(r: np.ndarray, what: str = "reference matrix") -> np.ndarray:
    """``R^{-1/2}`` of a symmetric positive definite matrix by eigendecomposition (float64)."""
    r = 0.5 * (r + r.T)
    # torch's LAPACK (MKL, torch's threads): NumPy's OpenBLAS would start its own spinning threads next to
    # torch's (measured: the alignment 2.5x slower on 2 threads when the two alternate)
    w, v = (t.numpy() for t in torch.linalg.eigh(torch.from_numpy(np.ascontiguousarray(r, dtype=np.float64))))
    if w[0] <= 1e-10 * max(w[-1], 0.0) or w[-1] <= 0:
        raise ValueError(
            f"{what} is not positive definite (eigenvalues {w[0]:.3g} .. {w[-1]:.3g}): trials have fewer "
            "independent samples than channels, or channels are linearly dependent"
        )
    return (v / np.sqrt(w)) @ v.T


def euclidean_alignment(
    x: np.ndarray, covariance: str = "xxt", inplace: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Offline Euclidean alignment of the trials of one domain.

    Args:
        x: ``(n, C, T)`` float32/float64 trials of one subject or session.
        covariance: ``"xxt"`` (paper: ``X X^T``) or ``"cov"`` (``np.cov``, DBConformer).
        inplace: overwrite ``x`` (a C-contiguous float array) with the aligned trials instead of allocating.

    Returns:
        ``(x_aligned (n, C, T) of x.dtype, r_inv_sqrt (C, C) float64)``. Products run in ``x``'s dtype (float32
        BLAS for float32 trials: relative error ~1e-6 against the float64 formula); the reference matrix is
        averaged and inverted in float64.

    Example:
        >>> import numpy as np
        >>> xa, r = euclidean_alignment(np.random.default_rng(0).standard_normal((20, 8, 100)))
        >>> bool(np.allclose(np.mean(xa @ xa.transpose(0, 2, 1), axis=0), np.eye(8)))
        True
    """
    arr = as_float_array(x, "x", ndims=(3,), finite=False)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"x must hold at least one trial and one channel, got shape {tuple(arr.shape)}")
    if inplace and (arr is not x or not x.flags.writeable):
        raise ValueError("inplace=True needs a writeable C-contiguous float32/float64 numpy array x")
    r = _mean_covariance(arr, covariance)
    # NaN/Inf check fused into the covariance: its diagonal sums every squared sample, so a finite R means
    # finite trials; otherwise name the first bad sample (or report the overflow)
    if not np.isfinite(r).all():
        check_finite(arr, "x")
        raise ValueError("x: the trials' covariance overflows (values too large); rescale the data")
    r_inv = inv_sqrtm(r)
    out = arr if inplace else np.empty_like(arr)
    return _apply(r_inv, arr, out), r_inv


class OnlineEuclideanAlignment:
    """Causal, trial-by-trial Euclidean alignment: ``R_k = (k R_{k-1} + cov(X_k)) / (k + 1)``.

    ``update(trial)`` adds a trial to the running reference; ``transform(trial)`` aligns with the current
    reference; ``__call__(trial)`` does both (DBConformer's order: update, then align).

    Args:
        covariance: ``"xxt"`` or ``"cov"`` as in :func:`euclidean_alignment`.

    Example:
        >>> import numpy as np
        >>> ea = OnlineEuclideanAlignment()
        >>> out = [ea(t) for t in np.random.default_rng(0).standard_normal((5, 4, 50))]
        >>> ea.count, out[0].shape
        (5, (4, 50))
    """

    def __init__(self, covariance: str = "xxt") -> None:
        if covariance not in ("xxt", "cov"):
            raise ValueError(f"covariance must be 'xxt' or 'cov', got {covariance!r}")
        self.covariance = covariance
        self.count = 0
        self.reference: np.ndarray | None = None
        self._r_inv: np.ndarray | None = None

    def update(self, trial: np.ndarray) -> OnlineEuclideanAlignment:
        """Add one ``(C, T)`` trial to the running reference."""
        t = as_float_array(trial, "trial", ndims=(2,))
        if self.reference is not None and t.shape[0] != self.reference.shape[0]:
            raise ValueError(f"trial has {t.shape[0]} channels, the reference has {self.reference.shape[0]}")
        cov = _covariances(t[None].astype(np.float64, copy=False), self.covariance)[0]
        k = self.count
        self.reference = cov if self.reference is None else (k * self.reference + cov) / (k + 1)
        self.count = k + 1
        self._r_inv = None
        return self

    def transform(self, trial: np.ndarray) -> np.ndarray:
        """Align one ``(C, T)`` trial (or ``(n, C, T)`` trials) with the current reference."""
        if self.reference is None:
            raise ValueError("OnlineEuclideanAlignment.transform called before any update()")
        t = as_float_array(trial, "trial", ndims=(2, 3))
        if t.shape[-2] != self.reference.shape[0]:
            raise ValueError(f"trial has {t.shape[-2]} channels, the reference has {self.reference.shape[0]}")
        if self._r_inv is None:
            self._r_inv = inv_sqrtm(self.reference, f"online EA reference after {self.count} trial(s)")
        return np.matmul(self._r_inv, t.astype(np.float64, copy=False)).astype(t.dtype, copy=False)

    def __call__(self, trial: np.ndarray) -> np.ndarray:
        return self.update(trial).transform(trial)
