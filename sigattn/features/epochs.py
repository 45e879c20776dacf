"""Epoching of a continuous recording from an MNE-style events array.

Same conventions as ``mne.Epochs`` (Gramfort et al., Front. Neurosci. 2013): epoch times are
``arange(round(tmin sfreq), round(tmax sfreq) + 1) / sfreq`` (``tmax`` included), an epoch starts at sample
``event + round(tmin sfreq)``, and ``baseline=(a, b)`` subtracts each channel's mean over epoch times in
``[a, b]`` (``None`` = the epoch's first / last time).
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
from numba import njit, prange

from ._core import KERNEL_LOCK, as_float_array

__all__ = ["epochs_from_events"]


@njit(cache=True)
def _epoch_range(data, starts, n_times, b0, b1, out, e_begin, e_end):
    # serial per range (vectorised copies; a prange body over (epoch, channel) was ~2.5x slower)
    n_ch = data.shape[0]
    for e in range(e_begin, e_end):
        s = starts[e]
        for c in range(n_ch):
            src = data[c, s : s + n_times]
            dst = out[e, c]
            mean = 0.0
            if b1 > b0:
                for t in range(b0, b1):
                    mean += src[t]
                mean /= b1 - b0
                for t in range(n_times):
                    dst[t] = src[t] - mean
            else:
                for t in range(n_times):
                    dst[t] = src[t]


@njit(cache=True, parallel=True)
def _epoch_kernel(data, starts, n_times, b0, b1, out):
    for e in prange(starts.shape[0]):
        _epoch_range(data, starts, n_times, b0, b1, out, e, e + 1)


def _epoch_plan(n_samples, events, sfreq, tmin, tmax, event_id, baseline, on_outside):
    """Validate the epoching arguments; return ``(kept events, start samples, n_times, b0, b1)``."""
    ev = np.asarray(events)
    if ev.ndim != 2 or ev.shape[1] != 3 or not np.issubdtype(ev.dtype, np.integer):
        raise ValueError(
            f"events must be an integer (n, 3) array [sample, previous, code], got {ev.dtype} {ev.shape}"
        )
    if not sfreq > 0:
        raise ValueError(f"sfreq must be > 0, got {sfreq}")
    if not tmax >= tmin:
        raise ValueError(f"tmax ({tmax}) must be >= tmin ({tmin})")
    if on_outside not in ("raise", "drop"):
        raise ValueError(f"on_outside must be 'raise' or 'drop', got {on_outside!r}")
    if event_id is not None:
        codes = list(event_id.values()) if isinstance(event_id, dict) else list(np.atleast_1d(event_id))
        missing = [c for c in codes if c not in set(ev[:, 2].tolist())]
        if missing:
            raise ValueError(
                f"event_id codes {missing} do not occur in events (codes present: {sorted(set(ev[:, 2]))})"
            )
        ev = ev[np.isin(ev[:, 2], codes)]
    first, last = int(round(tmin * sfreq)), int(round(tmax * sfreq))
    n_times = last - first + 1
    starts = ev[:, 0].astype(np.int64) + first
    inside = (starts >= 0) & (starts + n_times <= n_samples)
    if not inside.all():
        bad = int(np.flatnonzero(~inside)[0])
        if on_outside == "raise":
            raise ValueError(
                f"event {bad} at sample {int(ev[bad, 0])}: epoch [{tmin}, {tmax}] s needs samples "
                f"[{int(starts[bad])}, {int(starts[bad]) + n_times}) outside the data (0, {n_samples}); "
                "use on_outside='drop' to drop such epochs"
            )
        warnings.warn(
            f"dropped {int((~inside).sum())} of {len(ev)} epochs extending beyond the data", stacklevel=3
        )
        ev, starts = ev[inside], starts[inside]
    b0 = b1 = 0
    if baseline is not None:
        times = np.arange(first, last + 1) / sfreq
        a, b = baseline
        if a is not None and b is not None and a > b:
            raise ValueError(f"baseline {baseline}: start must be <= end")
        # index rule of mne.baseline.rescale
        b0 = 0 if a is None else int(np.flatnonzero(times >= a)[0]) if (times >= a).any() else n_times
        b1 = n_times if b is None else int(np.flatnonzero(times <= b)[-1]) + 1 if (times <= b).any() else 0
        if b1 <= b0:
            raise ValueError(
                f"baseline {baseline} selects no sample of the epoch [{times[0]}, {times[-1]}] s"
            )
    return ev, np.ascontiguousarray(starts), n_times, b0, b1


def _cut(x, starts, n_times, b0, b1, out):
    """Copy (and baseline-correct) epochs of ``x (C, T)`` into ``out (n, C, n_times)`` with the kernels."""
    with KERNEL_LOCK:
        # one thread: run here (workqueue would run it on its own thread, often on the other core)
        if numba.get_num_threads() == 1:
            _epoch_range(x, starts, n_times, b0, b1, out, 0, len(starts))
        else:
            _epoch_kernel(x, starts, n_times, b0, b1, out)


def epochs_from_events(
    data: np.ndarray,
    events: np.ndarray,
    sfreq: float,
    tmin: float,
    tmax: float,
    event_id: int | list[int] | dict[str, int] | None = None,
    baseline: tuple[float | None, float | None] | None = None,
    on_outside: str = "raise",
    return_events: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Cut ``(n, C, T_epoch)`` epochs from a ``(C, T)`` recording around event samples.

    Args:
        data: ``(C, T)`` float32/float64 recording.
        events: ``(n, 3)`` integer array ``[sample, previous, code]`` (MNE layout; sample 0 = first sample).
        sfreq: sampling rate in Hz.
        tmin: epoch start in seconds relative to the event (included).
        tmax: epoch end in seconds relative to the event (included).
        event_id: keep only these codes (an int, a list, or MNE's ``{name: code}`` dict); ``None`` keeps all.
        baseline: ``(a, b)`` seconds, either may be ``None``; ``None`` applies no baseline correction.
        on_outside: ``"raise"`` for epochs extending beyond the data, or ``"drop"`` (warns with the count).
        return_events: also return the events kept.

    Returns:
        ``(n_kept, C, T_epoch)`` array of ``data.dtype`` (and the kept ``(n_kept, 3)`` events).

    Example:
        >>> import numpy as np
        >>> ep = epochs_from_events(np.zeros((64, 1600)), np.array([[320, 0, 2], [800, 0, 3]]), 160.0, -0.5, 2.0)
        >>> ep.shape
        (2, 64, 401)
    """
    x = as_float_array(data, "data", ndims=(2,))
    ev, starts, n_times, b0, b1 = _epoch_plan(
        x.shape[1], events, sfreq, tmin, tmax, event_id, baseline, on_outside
    )
    out = np.empty((len(ev), x.shape[0], n_times), dtype=x.dtype)  # baseline means in float64
    _cut(x, starts, n_times, b0, b1, out)
    return (out, ev) if return_events else out
