"""Numba-JIT preprocessing on numpy arrays (+ a torch fbank module): Kaldi fbank, CMVN, EEG filters,
resampling, epoching, Euclidean alignment, sliding windows and RevIN statistics.

Every public function validates its input (dtype, rank, finite values, band edges) and raises
``ValueError``/``TypeError`` naming the problem; kernels are ``@njit(cache=True)`` and safe in forked
``DataLoader`` workers (see :mod:`sigattn.features._core`).
"""

from ._core import set_num_threads, threading_layer, torch_threads, worker_init_fn
from .alignment import OnlineEuclideanAlignment, euclidean_alignment
from .cmvn import cmvn, sliding_cmn
from .epochs import epochs_from_events
from .fbank import fbank, fbank_batch, mel_banks, window_function
from .fbank_torch import Fbank
from .filters import butter_sos, fir_epochs, fir_filter, iir_filter, mne_fir_design, notch_filter, sosfiltfilt
from .resample import resample_poly
from .warmup import warmup
from .windows import instance_norm_stats, sliding_windows

__all__ = [
    "Fbank",
    "OnlineEuclideanAlignment",
    "butter_sos",
    "cmvn",
    "epochs_from_events",
    "euclidean_alignment",
    "fbank",
    "fbank_batch",
    "fir_epochs",
    "fir_filter",
    "iir_filter",
    "instance_norm_stats",
    "mel_banks",
    "mne_fir_design",
    "notch_filter",
    "resample_poly",
    "set_num_threads",
    "torch_threads",
    "sliding_cmn",
    "sliding_windows",
    "sosfiltfilt",
    "threading_layer",
    "warmup",
    "window_function",
    "worker_init_fn",
]
