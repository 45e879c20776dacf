"""The fused lanes kernel is fenced: an environment switch or a failure to import/compile it falls back to the
block path (one warning), with the same features."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

from sigattn.features import fbank, fbank_batch

fb = importlib.import_module(
    "sigattn.features.fbank"
)  # the module (the package exports a function of that name)


def _signal(n=16000 * 2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    tone = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t * (1 + 0.1 * t))
    return (3000 * tone + 300 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture
def fresh_state(monkeypatch):
    """A copy of the fence's state, so a simulated failure does not disable the kernel for later tests."""
    monkeypatch.setattr(fb, "_lanes_state", {"module": None, "failed": None})
    monkeypatch.delenv(fb.LANES_ENV, raising=False)
    return fb._lanes_state


def _forbid_lanes(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the lanes path ran although it was switched off")

    monkeypatch.setattr(fb, "_run_lanes", boom)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-9), ("float32", 2e-3)])
def test_env_switch_forces_block_path_with_same_features(monkeypatch, fresh_state, dtype, tol):
    x = _signal()
    lanes = fbank(x, dtype=dtype)
    assert fb.lanes_enabled()
    monkeypatch.setenv(fb.LANES_ENV, "0")
    assert not fb.lanes_enabled()
    _forbid_lanes(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the explicit switch is silent
        blocks = fbank(x, dtype=dtype)
    assert blocks.shape == lanes.shape
    # both paths frame in float64; they differ only in the FFT (own radix-4 vs torch.fft)
    np.testing.assert_allclose(blocks, lanes, rtol=0, atol=tol)


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no"])
def test_env_switch_values(monkeypatch, fresh_state, value):
    monkeypatch.setenv(fb.LANES_ENV, value)
    assert not fb.lanes_enabled()


def test_compile_failure_falls_back_once_with_one_warning(monkeypatch, fresh_state):
    x = _signal()
    batch = [x, x[:9000]]
    monkeypatch.setenv(fb.LANES_ENV, "0")
    want, want_batch = fbank(x), fbank_batch(batch)[0]
    monkeypatch.delenv(fb.LANES_ENV)

    class BrokenKernel:
        calls = 0

        @classmethod
        def fbank_groups(cls, *a, **k):
            cls.calls += 1
            raise numba.core.errors.TypingError("No implementation of function vload (simulated)")

    fresh_state["module"] = BrokenKernel
    with pytest.warns(RuntimeWarning, match=r"lanes kernel is unavailable .*TypingError.*block path") as rec:
        got = fbank(x)
    calls = BrokenKernel.calls  # one per thread that ran a part
    assert calls >= 1
    assert len([w for w in rec if issubclass(w.category, RuntimeWarning)]) == 1
    np.testing.assert_array_equal(got, want)  # the block path, bit for bit
    assert not fb.lanes_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, and the kernel is not tried again
        got_batch = fbank_batch(batch)[0]
    assert BrokenKernel.calls == calls
    np.testing.assert_array_equal(got_batch, want_batch)


def test_real_errors_are_not_swallowed(fresh_state):
    with pytest.raises(ValueError, match="shorter than one frame"):
        fbank(np.zeros(100, dtype=np.float32))
    x = _signal()
    x[5000] = np.nan
    with pytest.raises(ValueError) as err:
        fbank(x)
    assert "non-finite value (nan) at index 5000" in str(err.value)
    assert fb.lanes_enabled()


def _run_py(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != fb.LANES_ENV}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_features_import_without_the_kernel_and_fall_back_when_it_cannot_import():
    # importing sigattn.features (and the torch module) must not import the kernel; then `sys.modules[name] =
    # None` makes its import fail with ImportError, as a Numba release without the internals it uses would
    r = _run_py(
        "import sys, warnings\n"
        "import numpy as np\n"
        "import sigattn.features, sigattn.features.fbank_torch\n"
        "print('imported' if 'sigattn.features._lanes' in sys.modules else 'not-imported')\n"
        "sys.modules['sigattn.features._lanes'] = None\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    y = sigattn.features.fbank(np.random.default_rng(0).standard_normal(4000).astype(np.float32))\n"
        "print(y.shape, len(w), w[0].message if w else '')\n"
    )
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()[:2]
    assert first == "not-imported"
    assert second.startswith("(23, 80) 1 "), r.stdout
    assert "lanes kernel is unavailable" in second and "ModuleNotFoundError" in second


def test_fallback_waits_for_every_thread_of_the_failed_run(monkeypatch, fresh_state):
    # the calling thread's part fails at once while a pool thread is still running its part: the fallback
    # must not start until that thread stopped writing into the output (else its writes land in the result)
    if numba.get_num_threads() < 2:
        pytest.skip("needs at least 2 Numba threads (NUMBA_NUM_THREADS=1 here)")
    import threading
    import time

    x = _signal(16000 * 8)
    monkeypatch.setenv(fb.LANES_ENV, "0")
    want = fbank(x)
    monkeypatch.delenv(fb.LANES_ENV)
    main = threading.get_ident()

    class SlowBrokenKernel:
        @staticmethod
        def fbank_groups(*args, **kwargs):
            if threading.get_ident() == main:
                raise numba.core.errors.TypingError("simulated")
            time.sleep(0.5)
            args[28][:] = 12345.0  # flat_out: what a still-running part would write
            return 0.0

    fresh_state["module"] = SlowBrokenKernel
    with pytest.warns(RuntimeWarning, match="lanes kernel is unavailable"):
        got = fbank(x)
    np.testing.assert_array_equal(got, want)
