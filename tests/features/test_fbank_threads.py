"""fbank runs its FFT on one torch thread whatever the thread settings, and restores the caller's count."""

import numba
import numpy as np
import pytest
import torch

from sigattn.features import fbank, torch_threads


def test_fft_single_threaded_under_parallel_kernels_and_count_restored(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads (NUMBA_NUM_THREADS=1 here)")
    seen = []
    real_rfft = torch.fft.rfft

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_rfft(*args, **kwargs)

    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    before_numba, before_torch = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(2)
    torch.set_num_threads(2)
    try:
        ref = fbank(x)  # unpatched result
        monkeypatch.setattr(torch.fft, "rfft", spy)
        got = fbank(x)
        assert seen and set(seen) == {1}, f"FFT ran with torch threads {sorted(set(seen))}"
        assert torch.get_num_threads() == 2
        np.testing.assert_array_equal(got, ref)
    finally:
        numba.set_num_threads(before_numba)
        torch.set_num_threads(before_torch)


def test_torch_threads_context_restores_on_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with torch_threads(1):
                assert torch.get_num_threads() == 1
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
