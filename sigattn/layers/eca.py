"""Efficient channel attention (ECA-Net) for ``(B, C, T)`` signals, with exact masking.

Reference: Q. Wang, B. Wu, P. Zhu, P. Li, W. Zuo, Q. Hu, "ECA-Net: Efficient Channel Attention for Deep
Convolutional Neural Networks", CVPR 2020, arXiv 1910.03151.

Kernel size: the paper's ``k = |log2(C)/gamma + b/gamma|_odd`` (nearest odd number, ties rounded up) is the
default. timm's ``EcaModule`` differs: it floors ``(log2(C) + b)/gamma``, moves an even result up to the next
odd number, and clamps to ``k >= 3``; ``kernel_rule="timm"`` reproduces that. The two agree for most
channel counts (e.g. 16-80 -> 3, 128-1024 -> 5, 2048 -> 7) but differ for small ``C`` (``C <= 4``: paper 1,
timm 3), which matters for raw EEG or microphone channel counts. The official ECA-Net code never computes
the adaptive ``k`` (it takes ``k_size=3`` unless told otherwise).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._masking import check_input, lengths_to_mask, masked_mean, scale_channels

__all__ = ["ECA", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0, rule: str = "paper") -> int:
    """Adaptive ECA kernel size for ``channels``.

    Args:
        channels: channel count ``C``.
        gamma: ``gamma`` of the paper (2).
        b: ``b`` of the paper (1).
        rule: ``"paper"``: nearest odd number to ``(log2(C) + b) / gamma`` (ties up), at least 1;
            ``"timm"``: ``t = int(|log2(C) + b| / gamma)``, ``k = t`` if odd else ``t + 1``, then ``max(k, 3)``.

    Example:
        >>> [eca_kernel_size(c) for c in (4, 64, 256, 2048)], eca_kernel_size(4, rule="timm")
        ([1, 3, 5, 7], 3)
    """
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"eca_kernel_size: channels must be a positive int, got {channels!r}")
    t = (math.log2(channels) + b) / gamma
    if rule == "paper":
        return max(1, 2 * math.floor((t - 1) / 2 + 0.5) + 1)
    if rule == "timm":
        k = int(abs(math.log2(channels) + b) / gamma)
        return max(k if k % 2 else k + 1, 3)
    raise ValueError(f"eca_kernel_size: rule must be 'paper' or 'timm', got {rule!r}")


class ECA(nn.Module):
    """ECA gate: ``y = x * sigmoid(conv1d_k(z))``, one shared kernel sliding over the channel axis.

    ``z`` is the masked time mean ``(B, C)``; the convolution has no bias and zero padding ``(k - 1) / 2``, so
    the layer has exactly ``k`` parameters.

    Shapes: ``x`` is ``(B, C, T)`` with optional ``lengths`` ``(B,)``, or ``(B, C, H, W)`` (pooled over both
    trailing axes). ``forward`` returns the shape of ``x``; ``attention`` the gate ``(B, C)``.

    Args:
        channels: channel count ``C`` (sets the adaptive kernel size and is checked against the input).
        kernel_size: fixed odd kernel size; ``None`` uses :func:`eca_kernel_size`.
        gamma: ``gamma`` of the kernel formula.
        b: ``b`` of the kernel formula.
        kernel_rule: ``"paper"`` (default) or ``"timm"`` (floor, next odd, ``k >= 3``).

    Example:
        >>> eca = ECA(512)
        >>> eca.kernel_size, eca(torch.randn(2, 512, 100), lengths=torch.tensor([100, 30])).shape
        (5, torch.Size([2, 512, 100]))
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | None = None,
        gamma: float = 2.0,
        b: float = 1.0,
        kernel_rule: str = "paper",
    ) -> None:
        super().__init__()
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels, gamma, b, kernel_rule)
        elif not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"ECA: kernel_size must be a positive odd int, got {kernel_size!r}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    @torch.jit.export
    def attention(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The gate ``(B, C)``, each value in (0, 1)."""
        if not torch.jit.is_scripting():
            check_input(x, self.channels, lengths, ranks=(3, 4), name="ECA")
        x3 = x.flatten(2)
        z = masked_mean(x3, lengths_to_mask(lengths, x3.shape[-1], x3))  # (B, C, 1)
        return torch.sigmoid(self.conv(z.transpose(1, 2))).squeeze(1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return scale_channels(x, self.attention(x, lengths))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
