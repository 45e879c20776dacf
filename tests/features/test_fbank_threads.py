"""Threads and fbank: power-of-two FFT sizes (the default) run the fused lanes kernel, spread over Python threads
with identical results for any count and no torch FFT; other sizes run torch's FFT on one torch thread
whatever the thread settings, and restore the caller's count."""

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
        # 400-sample frames unpadded: not a power of two, so the torch FFT path
        ref = fbank(x, round_to_power_of_two=False)  # unpatched result
        monkeypatch.setattr(torch.fft, "rfft", spy)
        got = fbank(x, round_to_power_of_two=False)
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


def test_lanes_path_same_result_for_any_thread_count_and_no_torch_fft(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads (NUMBA_NUM_THREADS=1 here)")
    from sigattn.features import fbank_batch

    rng = np.random.default_rng(1)
    x = rng.standard_normal(16000 * 25).astype(np.float32)  # 2498 frames: several chunks per thread
    waves = [rng.standard_normal(n).astype(np.float32) for n in (16000 * 11, 4000, 16000 * 13)]
    calls = []
    real_rfft = torch.fft.rfft
    monkeypatch.setattr(torch.fft, "rfft", lambda *a, **k: calls.append(1) or real_rfft(*a, **k))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, one_b = fbank(x), fbank_batch(waves, use_energy=True)[0]
        numba.set_num_threads(2)
        two, two_b = fbank(x), fbank_batch(waves, use_energy=True)[0]
    finally:
        numba.set_num_threads(before)
    assert not calls
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one_b, two_b)
