"""Squeeze-and-excitation channel gate for ``(B, C, T)`` signals, with exact masking.

Reference: J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv 1709.01507.
The bottleneck rounding follows timm's ``SEModule`` (``make_divisible``); the masked time mean follows
SpeechBrain's ``SEBlock`` (ECAPA-TDNN uses an absolute bottleneck of 128 channels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._masking import check_input, lengths_to_mask, masked_mean, scale_channels

__all__ = ["SqueezeExcite", "bottleneck_channels", "make_divisible"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, at least ``min_value`` (default ``divisor``).

    ``new = max(min_value, floor((v + divisor / 2) / divisor) * divisor)``; if ``new < round_limit * v`` one
    more ``divisor`` is added (timm's rule; SE passes ``round_limit=0`` so the bump never fires).

    Example:
        >>> make_divisible(512 / 16, 8, round_limit=0.0), make_divisible(16 / 16, 8, round_limit=0.0)
        (32, 8)
    """
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new < round_limit * v:
        new += divisor
    return int(new)


def bottleneck_channels(
    name: str, channels: int, rd_ratio: float, rd_channels: int | None, rd_divisor: int
) -> int:
    """Validated bottleneck width: ``rd_channels`` if given, else ``make_divisible(C * rd_ratio, rd_divisor)``.

    Example:
        >>> bottleneck_channels("SE", 512, 1 / 16, None, 8), bottleneck_channels("SE", 512, 1 / 16, 128, 8)
        (32, 128)
    """
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{name}: channels must be a positive int, got {channels!r}")
    if rd_channels is None:
        if not rd_ratio > 0:
            raise ValueError(f"{name}: rd_ratio must be > 0, got {rd_ratio!r}")
        rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
    if not isinstance(rd_channels, int) or rd_channels < 1:
        raise ValueError(f"{name}: rd_channels must be a positive int, got {rd_channels!r}")
    return rd_channels


class SqueezeExcite(nn.Module):
    """SE gate: ``s = sigmoid(W2 relu(W1 z + b1) + b2)``, ``y = x * s`` with ``z`` the masked time mean.

    Shapes: ``x`` is ``(B, C, T)`` with optional ``lengths`` ``(B,)``, or ``(B, C, H, W)`` (pooled over both
    trailing axes, no masking). ``forward`` returns the shape of ``x``; ``attention`` the gate ``(B, C)``.

    Args:
        channels: number of input channels ``C``.
        rd_ratio: bottleneck ratio; ``r = make_divisible(C * rd_ratio, rd_divisor, round_limit=0)``.
        rd_channels: absolute bottleneck width ``r`` (overrides ``rd_ratio``; ECAPA-TDNN uses 128).
        rd_divisor: rounding divisor for the ratio form (default 8, timm's).
        bias: whether ``fc1``/``fc2`` have biases.

    Parameter count: ``C*r + C*r`` weights, plus ``r + C`` biases when ``bias``.

    Example:
        >>> se = SqueezeExcite(512, rd_channels=128)
        >>> se(torch.randn(2, 512, 100), lengths=torch.tensor([100, 60])).shape
        torch.Size([2, 512, 100])
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 8,
        bias: bool = True,
    ) -> None:
        super().__init__()
        rd_channels = bottleneck_channels("SqueezeExcite", channels, rd_ratio, rd_channels, rd_divisor)
        self.channels = channels
        self.rd_channels = rd_channels
        self.fc1 = nn.Conv1d(channels, rd_channels, 1, bias=bias)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv1d(rd_channels, channels, 1, bias=bias)

    @torch.jit.export
    def attention(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The gate ``s`` of shape ``(B, C)``, each value in (0, 1)."""
        if not torch.jit.is_scripting():
            check_input(x, self.channels, lengths, ranks=(3, 4), name="SqueezeExcite")
        x3 = x.flatten(2)
        z = masked_mean(x3, lengths_to_mask(lengths, x3.shape[-1], x3))
        return torch.sigmoid(self.fc2(self.act(self.fc1(z)))).squeeze(-1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return scale_channels(x, self.attention(x, lengths))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rd_channels={self.rd_channels}"
