"""Numba set-up and input validation shared by every feature kernel.

Numba's threading layer is chosen here, before any parallel kernel runs. The pip numba wheel picks GNU
OpenMP (``omp``), which is not fork safe: once a ``parallel=True`` kernel has run in a process, a forked
child (a ``DataLoader`` worker) aborts with "fork() called from a process already using GNU OpenMP".
Unless the user has chosen a layer (``NUMBA_THREADING_LAYER``), sigattn selects ``workqueue``, which is
fork safe but not thread safe; the public wrappers therefore run parallel kernels under :data:`KERNEL_LOCK`,
so concurrent calls from several Python threads are serialised instead of aborting.

The kernel cache (``cache=True``) lives in ``NUMBA_CACHE_DIR`` when set (the Makefile points it to
``.cache/numba``); otherwise numba uses ``__pycache__`` beside the sources.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = [
    "KERNEL_LOCK",
    "as_float_array",
    "check_finite",
    "set_num_threads",
    "torch_threads",
    "thread_pool",
    "threading_layer",
    "worker_init_fn",
]

if not os.environ.get("NUMBA_THREADING_LAYER") and numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"

KERNEL_LOCK = threading.RLock()

_POOL: ThreadPoolExecutor | None = None
_POOL_KEY: tuple[int, int] | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool_in_child() -> None:
    """After ``fork``: the parent's pool threads do not exist in the child, and its lock may be held."""
    global _POOL, _POOL_KEY, _POOL_LOCK
    _POOL, _POOL_KEY, _POOL_LOCK = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def thread_pool(n: int) -> ThreadPoolExecutor:
    """A persistent pool of ``n`` Python threads for kernels that release the GIL (FIR row ranges, fbank frame
    ranges). Persistent because new threads are expensive here: a fresh pool per call made 60 s of fbank 2.3x
    slower (5.5 vs 2.4 ms), MKL and OpenMP setting up per-thread state each time. A forked child (DataLoader
    worker) gets a new pool: the parent's threads do not exist there."""
    global _POOL, _POOL_KEY
    key = (os.getpid(), int(n))
    with _POOL_LOCK:
        if _POOL is None or key != _POOL_KEY:
            _POOL = ThreadPoolExecutor(int(n), thread_name_prefix="sigattn-features")
            _POOL_KEY = key
        return _POOL


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch ops inside the block on at most ``n`` intra-op threads; the previous count is restored.

    Used where a Numba ``prange`` kernel already occupies every core between torch calls: torch's OpenMP
    threads and Numba's workers then fight for the same cores (measured: fbank 10x slower with 2 + 2 threads
    on 2 cores than with either pool alone). The count is process-wide while the block runs.
    """
    import torch

    before = torch.get_num_threads()
    if before <= n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threading_layer() -> str:
    """The numba threading layer configured (``"workqueue"`` unless the user chose another)."""
    return str(numba.config.THREADING_LAYER)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in numba kernels, torch (the FFTs) and, when threadpoolctl is installed, BLAS.

    numba can only go down from its start value (``NUMBA_NUM_THREADS``). Limiting BLAS matters on busy
    machines: OpenBLAS threads spin while waiting and slow small products (the alignment's) by 10-100x.
    """
    import torch

    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: BLAS keeps its own thread count
        return
    threadpool_limits(n)


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)`` helper: one kernel/FFT/BLAS thread per worker (no oversubscription).

    Example:
        >>> from torch.utils.data import DataLoader
        >>> loader = DataLoader(range(4), num_workers=0, worker_init_fn=worker_init_fn)
    """
    set_num_threads(1)


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming the first NaN/Inf index of ``x``."""
    # fast path: a NaN or Inf makes the sum non-finite (one SIMD pass, no boolean temporary); a finite array
    # whose sum overflows takes the exact check below
    with np.errstate(over="ignore", invalid="ignore"):
        if x.size == 0 or np.isfinite(np.add.reduce(x, axis=None)):
            return
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        idx = tuple(int(i) for i in bad)
        raise ValueError(
            f"{name} contains a non-finite value ({x[idx]}) at index {idx if len(idx) > 1 else idx[0]}"
        )


def as_float_array(
    x: object,
    name: str,
    ndims: tuple[int, ...],
    dtypes: tuple[type, ...] = (np.float32, np.float64),
    allow_int16: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Validate a numpy array: real floating dtype, rank in ``ndims``, finite values; return it C-contiguous.

    Tensors are not accepted silently: pass ``tensor.numpy()``. int16 arrays are converted to float32 when
    ``allow_int16`` (their scale is kept: values stay in [-32768, 32767]). ``finite=False`` skips the NaN/Inf
    check for callers whose kernels check as they read.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray, got {type(x).__name__}")
    if allow_int16 and x.dtype == np.int16:
        x = x.astype(np.float32)
    if x.dtype not in [np.dtype(d) for d in dtypes]:
        want = ", ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must have dtype {want}, got {x.dtype}")
    if x.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(x.shape)}")
    if finite:
        check_finite(x, name)
    return np.ascontiguousarray(x)
