"""The pure-Python part of the lanes fbank kernel (:mod:`._lanes`): its sizes and its FFT plan.

Kept apart from :mod:`._lanes`, which builds a Numba extension type on Numba/llvmlite internals, so that the
torch module (:mod:`.fbank_torch`) and the dispatch in :mod:`.fbank` never import those internals: if they
break on a Numba release, the fbank falls back to the block path and everything else still imports.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["FAST_N", "LANES", "lane_plan"]

LANES = 16  # frames per tile: 16 float32 = one AVX-512 register, two AVX2 ones
FAST_N = (16, 32, 64, 128, 256, 512, 1024)  # complex FFT sizes of the lanes kernel (padded 32 .. 2048)


@functools.lru_cache(maxsize=16)
def lane_plan(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, twiddles)`` of the ``n``-point complex FFT in :func:`fft_lanes`.

    ``order[p]`` is the input index that tile row ``p`` must hold (mixed-radix digit reversal; the output is in
    natural order). ``twiddles[q + j] = (w^j, w^2j, w^3j)`` as (cos, sin) pairs, ``w = exp(-2 pi i / 4q)``, for
    the radix-4 stage of quarter length ``q`` (the stages' ``q`` ranges do not overlap).
    """
    if n < 2 or n & (n - 1):
        raise ValueError(f"lane FFT size must be a power of two >= 2, got {n}")
    p = n.bit_length() - 1
    radices = ([2] if p % 2 else []) + [4] * (p // 2)

    def order(size: int, rs: list[int]) -> list[int]:
        if not rs:
            return [0]
        r = rs[-1]
        sub = order(size // r, rs[:-1])
        return [s + r * t for s in range(r) for t in sub]

    perm = np.array(order(n, radices), dtype=np.int64)
    tw = np.zeros((max(n // 2, 1), 6), dtype=np.float64)
    m = 1
    for r in radices:
        m *= r
        if r == 4:
            q = m // 4
            j = np.arange(q)
            for t in range(3):
                a = -2.0 * math.pi * (t + 1) * j / m
                tw[q + j, 2 * t] = np.cos(a)
                tw[q + j, 2 * t + 1] = np.sin(a)
    perm.setflags(write=False)
    tw.setflags(write=False)
    return perm, tw
