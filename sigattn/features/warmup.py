"""``warmup()``: compile (or load from the cache) every feature kernel once, e.g. before timing or forking.

It lives apart from :mod:`._core` because it imports every kernel module, and every kernel module imports
``_core``: kept there, the two closed an import circle.
"""

from __future__ import annotations

import numpy as np

from .alignment import euclidean_alignment
from .epochs import epochs_from_events
from .fbank import fbank
from .filters import fir_epochs, fir_filter, iir_filter
from .resample import resample_poly

__all__ = ["warmup"]


def warmup() -> None:
    """Compile (or load from the cache) every feature kernel once, on tiny inputs."""
    rng = np.random.default_rng(0)
    fbank(rng.standard_normal(800).astype(np.float32))
    x = rng.standard_normal((2, 400))
    iir_filter(x, 100.0, 8.0, 30.0)
    fir_filter(x, 100.0, 8.0, 30.0)
    fir_epochs(x, 100.0, 8.0, 30.0, np.array([[100, 0, 1]]), 0.0, 0.5, dtype="float32")
    resample_poly(x, 2, 3)
    epochs_from_events(x, np.array([[100, 0, 1]]), 100.0, 0.0, 0.5)
    euclidean_alignment(rng.standard_normal((3, 2, 50)))
