"""Synthetic multivariate series with K latent channel groups (ground truth for channel clustering).

Each group ``g`` has its own latent signal: a seasonal part (two sinusoids with group-specific periods and
phases), a slow linear trend and an AR(1) component with a group-specific coefficient (persistent for some
groups, mean-reverting or oscillating for others). Each channel is its group's latent signal times a
channel-specific scale, plus a channel-specific offset and independent Gaussian noise. Channels of one group
therefore share shape and dynamics; channels of different groups do not, which is the setting where CCM
(Chen et al., NeurIPS 2024) should beat one channel-independent model.

numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusteredSeries", "make_clustered_series"]

_PERIODS = (24.0, 10.0, 37.0, 16.0, 60.0, 7.0, 45.0, 13.0)
_PHIS = (0.97, 0.2, -0.6, 0.8, 0.5, -0.3, 0.9, 0.0)


@dataclass
class ClusteredSeries:
    """A synthetic multivariate series.

    Attributes:
        data: ``(C, T)`` float32 values (house layout: channels first).
        labels: ``(C,)`` int64 group of each channel.
        names: channel names ``"g{group}_c{index}"``.
    """

    data: np.ndarray
    labels: np.ndarray
    names: list[str]


def make_clustered_series(
    n_groups: int = 3,
    channels_per_group: int | list[int] = 3,
    length: int = 4000,
    noise: float = 0.3,
    seed: int = 0,
    shuffle: bool = True,
) -> ClusteredSeries:
    """Generate ``K = n_groups`` groups of channels with shared seasonal/trend/AR patterns.

    Args:
        n_groups: number of latent groups ``K`` (>= 1).
        channels_per_group: channels per group (one int, or a list of ``n_groups`` ints).
        length: number of time steps ``T``.
        noise: standard deviation of the channel noise relative to the group signal's.
        seed: random seed.
        shuffle: interleave the channels of the groups in a random order (labels follow).

    Returns:
        :class:`ClusteredSeries` with ``data`` ``(C, T)`` and ``labels`` ``(C,)``.

    Example:
        >>> s = make_clustered_series(n_groups=2, channels_per_group=3, length=500)
        >>> s.data.shape, sorted(set(s.labels.tolist()))
        ((6, 500), [0, 1])
    """
    if n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups}")
    counts = (
        [channels_per_group] * n_groups if isinstance(channels_per_group, int) else list(channels_per_group)
    )
    if len(counts) != n_groups or min(counts) < 1:
        raise ValueError(
            f"channels_per_group must be >= 1 per group ({n_groups} groups), got {channels_per_group}"
        )
    if length < 10:
        raise ValueError(f"length must be >= 10, got {length}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    rows, labels = [], []
    for g, count in enumerate(counts):
        p1 = _PERIODS[g % len(_PERIODS)] * (1 + 0.07 * (g // len(_PERIODS)))
        p2 = p1 * rng.uniform(2.2, 3.7)
        seasonal = np.sin(2 * np.pi * t / p1 + rng.uniform(0, 2 * np.pi)) + 0.5 * np.sin(
            2 * np.pi * t / p2 + rng.uniform(0, 2 * np.pi)
        )
        trend = rng.uniform(-1.0, 1.0) * t / length
        phi = _PHIS[g % len(_PHIS)]
        eps = rng.normal(0.0, 0.5 * np.sqrt(1 - phi * phi), length)
        ar = np.zeros(length)
        for i in range(1, length):
            ar[i] = phi * ar[i - 1] + eps[i]
        latent = seasonal + trend + ar
        latent = (latent - latent.mean()) / latent.std()
        for _ in range(count):
            scale = rng.uniform(0.5, 3.0)
            offset = rng.uniform(-5.0, 5.0)
            rows.append(scale * (latent + noise * rng.normal(0.0, 1.0, length)) + offset)
            labels.append(g)
    data = np.stack(rows).astype(np.float32)
    lab = np.asarray(labels, dtype=np.int64)
    if shuffle:
        order = rng.permutation(len(lab))
        data, lab = data[order], lab[order]
    names = [f"g{g}_c{i}" for i, g in enumerate(lab)]
    return ClusteredSeries(np.ascontiguousarray(data), lab, names)
