"""Numba-JIT preprocessing on numpy arrays (+ thin torch wrappers): Kaldi fbank, CMVN, EEG filters,
resampling, epoching, Euclidean alignment, sliding windows."""

from ._core import threading_layer, warmup
from .fbank import fbank, fbank_batch, mel_banks, window_function
from .fbank_torch import Fbank

__all__ = [
    "Fbank",
    "fbank",
    "fbank_batch",
    "mel_banks",
    "threading_layer",
    "warmup",
    "window_function",
]
