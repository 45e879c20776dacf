"""With one numba thread the wrappers call the serial kernels in the calling thread: same results."""

from __future__ import annotations

import numba
import numpy as np

from sigattn.features import epochs_from_events, fbank, fbank_batch


def _both(fn):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        a = fn()
        numba.set_num_threads(1)
        b = fn()
    finally:
        numba.set_num_threads(before)
    return a, b


def test_fbank_serial_equals_parallel():
    rng = np.random.default_rng(0)
    wave = (3000 * rng.standard_normal(24000)).astype(np.float32)
    a, b = _both(lambda: fbank(wave))
    np.testing.assert_allclose(a, b, atol=1e-6)
    waves = [wave[:16000], wave[:5000].astype(np.float64)]
    (fa, na), (fb, nb) = _both(lambda: fbank_batch(waves, use_energy=True, snip_edges=False))
    assert na.tolist() == nb.tolist()
    np.testing.assert_allclose(fa, fb, atol=1e-6)


def test_epochs_serial_equals_parallel():
    x = np.random.default_rng(1).standard_normal((8, 2000)).astype(np.float32)
    events = np.array([[100, 0, 1], [700, 0, 2], [1300, 0, 1]])
    a, b = _both(lambda: epochs_from_events(x, events, 100.0, -0.5, 2.0, baseline=(None, 0.0)))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
