"""CBAM channel gate for ``(B, C, T)`` signals: shared MLP over masked average and max pooling.

Reference: S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018,
arXiv 1807.06521. Defaults follow timm's ``ChannelAttn`` (bottleneck ``C * rd_ratio`` rounded with divisor
1, no MLP bias). Only the channel half of CBAM is here; the spatial half has no use on ``(B, C, T)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._masking import check_input, lengths_to_mask, masked_max, masked_mean, scale_channels
from .squeeze_excite import bottleneck_channels

__all__ = ["CBAMChannel"]


class CBAMChannel(nn.Module):
    """``M_c = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``, ``y = x * M_c``, one MLP shared by both pools.

    ``MLP = fc2(relu(fc1(.)))`` with ``fc1: C -> r``, ``fc2: r -> C``. Both pools are masked: padded steps
    never win the max nor enter the mean.

    Shapes: ``x`` is ``(B, C, T)`` with optional ``lengths`` ``(B,)``, or ``(B, C, H, W)``. ``forward``
    returns the shape of ``x``; ``attention`` the gate ``(B, C)``.

    Args:
        channels: channel count ``C``.
        rd_ratio: bottleneck ratio; ``r = make_divisible(C * rd_ratio, rd_divisor, round_limit=0)``.
        rd_channels: absolute bottleneck width (overrides ``rd_ratio``).
        rd_divisor: rounding divisor (timm's CBAM: 1).
        bias: MLP biases (timm: False).

    Parameter count: ``2*C*r`` (+ ``r + C`` with ``bias``).

    Example:
        >>> cbam = CBAMChannel(64)
        >>> cbam(torch.randn(2, 64, 50), lengths=torch.tensor([50, 9])).shape
        torch.Size([2, 64, 50])
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        rd_channels = bottleneck_channels("CBAMChannel", channels, rd_ratio, rd_channels, rd_divisor)
        self.channels = channels
        self.rd_channels = rd_channels
        self.fc1 = nn.Conv1d(channels, rd_channels, 1, bias=bias)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv1d(rd_channels, channels, 1, bias=bias)

    def _mlp(self, z: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(z)))

    @torch.jit.export
    def attention(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The gate ``(B, C)``, each value in (0, 1)."""
        if not torch.jit.is_scripting():
            check_input(x, self.channels, lengths, ranks=(3, 4), name="CBAMChannel")
        x3 = x.flatten(2)
        mask = lengths_to_mask(lengths, x3.shape[-1], x3)
        z = torch.cat([masked_mean(x3, mask), masked_max(x3, mask)], dim=-1)  # (B, C, 2): one MLP pass
        return torch.sigmoid(self._mlp(z).sum(-1))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return scale_channels(x, self.attention(x, lengths))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rd_channels={self.rd_channels}"
