"""DLinear with CI / CD / CCM channel strategies.

Reference: A. Zeng, M. Chen, L. Zhang, Q. Xu, "Are Transformers Effective for Time Series Forecasting?",
AAAI 2023 (LTSF-Linear). CCM integration as in Chen et al., NeurIPS 2024: both the seasonal and the trend
``Linear(L -> H)`` become cluster-aware heads.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sigattn.models.forecasting.base import ChannelMixing, Forecaster, StrategyLinear

__all__ = ["DLinear", "moving_average"]


def moving_average(x: Tensor, kernel_size: int) -> Tensor:
    """Moving average over the last axis with the series' end values repeated as padding (LTSF-Linear).

    Example:
        >>> moving_average(torch.arange(5.0).view(1, 1, 5), 3)
        tensor([[[0.3333, 1.0000, 2.0000, 3.0000, 3.6667]]])
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    pad = (kernel_size - 1) // 2
    b, c, t = x.shape
    xp = F.pad(x.reshape(b * c, 1, t), (pad, pad), mode="replicate") if pad else x.reshape(b * c, 1, t)
    return F.avg_pool1d(xp, kernel_size, stride=1).reshape(b, c, t)


class DLinear(Forecaster):
    """Series decomposition (moving average) + one linear map per component, ``(B, C, L) -> (B, C, H)``.

    ``ci`` is TSLib's ``individual=False`` (one linear pair shared by every channel); ``cd`` adds a residual
    channel mixing of the input; ``ccm`` uses ``K`` cluster heads per component. RevIN is off by default to
    match the published DLinear (global z-score only).

    Args:
        seq_len: lookback ``L``.
        pred_len: horizon ``H``.
        channel_strategy: ``"ci"``, ``"cd"`` or ``"ccm"``.
        n_channels: channel count (``cd`` only).
        n_clusters: ``K`` (``ccm`` only).
        kernel_size: moving-average kernel (25).
        revin: instance normalisation (default ``False``).
        **kw: further :class:`Forecaster` options (``ccm_d_model``, ``ccm_temperature``, ``ccm_refine``,
            ``ccm_assign_grad``, ``revin_affine``).

    Example:
        >>> DLinear(96, 24, channel_strategy="ccm", n_clusters=2)(torch.randn(4, 7, 96)).shape
        torch.Size([4, 7, 24])
    """

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        channel_strategy: str = "ci",
        n_channels: int | None = None,
        n_clusters: int = 3,
        kernel_size: int = 25,
        revin: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(seq_len, pred_len, channel_strategy, n_channels, n_clusters, revin=revin, **kw)
        self.kernel_size = kernel_size
        self.mixing = ChannelMixing(n_channels) if channel_strategy == "cd" else None
        self.seasonal = StrategyLinear(seq_len, pred_len, channel_strategy, n_clusters)
        self.trend = StrategyLinear(seq_len, pred_len, channel_strategy, n_clusters)
        # LTSF-Linear initialises both maps to a uniform average of the window.
        with torch.no_grad():
            for head in (self.seasonal, self.trend):
                head.layer.weight.fill_(1.0 / seq_len)

    def _forecast(self, z: Tensor, prob: Tensor | None) -> Tensor:
        if self.mixing is not None:
            z = self.mixing(z)
        trend = moving_average(z, self.kernel_size)
        return self.seasonal(z - trend, prob) + self.trend(trend, prob)
