"""TSMixer with CI / CD / CCM channel strategies.

Reference: S.-A. Chen, C.-L. Li, N. Yoder, S. O. Arik, T. Pfister, "TSMixer: An All-MLP Architecture for Time
Series Forecasting", TMLR 2023. CCM integration as in Chen et al., NeurIPS 2024: the time-mixing MLP and the
temporal projection become cluster-aware.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from sigattn.models.forecasting.base import Forecaster, StrategyLinear

__all__ = ["TSMixer"]


class _MixerBlock(nn.Module):
    def __init__(
        self, seq_len: int, strategy: str, n_clusters: int, n_channels: int | None, d_ff: int, dropout
    ):
        super().__init__()
        self.norm_t = nn.LayerNorm(seq_len)
        self.time = StrategyLinear(seq_len, seq_len, strategy, n_clusters)
        self.act, self.drop = nn.ReLU(), nn.Dropout(dropout)
        # Feature (channel) mixing only where channels may interact: "cd" and "ccm" (TSMixer is CD by design).
        self.feature = None
        if strategy == "cd":
            self.norm_f = nn.LayerNorm(n_channels)
            self.feature = nn.Sequential(
                nn.Linear(n_channels, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, n_channels)
            )

    def forward(self, x: Tensor, prob: Tensor | None) -> Tensor:
        x = x + self.drop(self.act(self.time(self.norm_t(x), prob)))
        if self.feature is not None:
            x = x + self.drop(self.feature(self.norm_f(x.transpose(1, 2)))).transpose(1, 2)
        return x


class TSMixer(Forecaster):
    """Residual time-mixing (and, for ``cd``, feature-mixing) MLP blocks, then a temporal projection.

    ``ci`` drops the feature mixing (each channel alone); ``cd`` is the original TSMixer (needs
    ``n_channels``); ``ccm`` makes time mixing and projection cluster-aware and, to keep zero-shot use on any
    channel count, has no fixed-size feature mixing (channels interact through the clustering).

    Args:
        seq_len: lookback ``L``.
        pred_len: horizon ``H``.
        channel_strategy: ``"ci"``, ``"cd"`` or ``"ccm"``.
        n_channels: channel count (``cd`` only).
        n_clusters: ``K`` (``ccm`` only).
        n_blocks: mixer blocks (2).
        d_ff: hidden width of the feature MLP (64).
        dropout: dropout (0.1).
        revin: instance normalisation (default ``True``).
        **kw: further :class:`Forecaster` options.

    Example:
        >>> import torch
        >>> TSMixer(96, 24, channel_strategy="cd", n_channels=7)(torch.randn(2, 7, 96)).shape
        torch.Size([2, 7, 24])
    """

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        channel_strategy: str = "ci",
        n_channels: int | None = None,
        n_clusters: int = 3,
        n_blocks: int = 2,
        d_ff: int = 64,
        dropout: float = 0.1,
        revin: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(seq_len, pred_len, channel_strategy, n_channels, n_clusters, revin=revin, **kw)
        self.blocks = nn.ModuleList(
            _MixerBlock(seq_len, channel_strategy, n_clusters, n_channels, d_ff, dropout)
            for _ in range(n_blocks)
        )
        self.proj = StrategyLinear(seq_len, pred_len, channel_strategy, n_clusters)

    def _forecast(self, z: Tensor, prob: Tensor | None) -> Tensor:
        if self.channel_strategy == "cd" and z.shape[1] != self.n_channels:
            raise ValueError(
                f"channel_strategy='cd' was built for {self.n_channels} channels, got {tuple(z.shape)}"
            )
        for block in self.blocks:
            z = block(z, prob)
        return self.proj(z, prob)
