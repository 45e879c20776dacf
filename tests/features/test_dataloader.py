"""Kernels inside torch DataLoader workers (fork) after parallel kernels already ran in the parent process.

With numba's default ``omp`` layer this aborts ("fork() called from a process already using GNU OpenMP");
sigattn selects the fork-safe ``workqueue`` layer unless the user chose one.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from sigattn.features import fbank, fir_filter, iir_filter, resample_poly, threading_layer, worker_init_fn


class FeatureDataset(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        rng = np.random.default_rng(i)
        wave = rng.standard_normal(4000).astype(np.float32)
        eeg = rng.standard_normal((4, 800))
        f = fbank(wave)
        e = iir_filter(eeg, 160.0, 8.0, 30.0) + fir_filter(eeg, 160.0, 8.0, 30.0)
        return torch.from_numpy(f), torch.from_numpy(resample_poly(e, 1, 2))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork start method on this platform")
def test_dataloader_fork_workers_after_parent_ran_kernels():
    assert threading_layer() != "omp"
    ds = FeatureDataset()
    expected = [ds[i] for i in range(len(ds))]  # parallel kernels run in the parent first
    for init in (None, worker_init_fn):
        loader = DataLoader(
            ds,
            batch_size=2,
            num_workers=2,
            multiprocessing_context=mp.get_context("fork"),
            worker_init_fn=init,
        )
        got = [item for batch in loader for item in zip(*batch)]
        assert len(got) == len(expected)
        for (f, e), (fr, er) in zip(got, expected):
            torch.testing.assert_close(f, fr)
            torch.testing.assert_close(e, er)


def test_concurrent_calls_from_threads():
    """workqueue is not thread-safe; the public wrappers serialise parallel kernels, so threads get exact results."""
    from concurrent.futures import ThreadPoolExecutor

    ds = FeatureDataset()
    expected = [ds[i] for i in range(len(ds))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(ds.__getitem__, range(len(ds))))
    for (f, e), (fr, er) in zip(got, expected):
        torch.testing.assert_close(f, fr)
        torch.testing.assert_close(e, er)


def _pool_in_child(queue) -> None:
    from sigattn.features._core import thread_pool

    pool = thread_pool(2)
    queue.put(sorted(pool.map(lambda v: v * v, range(4))))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork start method on this platform")
def test_thread_pool_is_recreated_in_a_forked_child():
    """The parent's pool threads do not exist after fork: a child must get a new pool, not hang on the old one."""
    from sigattn.features._core import thread_pool

    parent_pool = thread_pool(2)
    assert sorted(parent_pool.map(lambda v: v + 1, range(3))) == [1, 2, 3]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_pool_in_child, args=(queue,))
    proc.start()
    squares = queue.get(timeout=60)  # the parent's pool would never run the tasks: its threads are gone
    proc.join(timeout=60)
    assert proc.exitcode == 0 and squares == [0, 1, 4, 9]
