"""PatchTST with CI / CD / CCM channel strategies.

Reference: Y. Nie, N. H. Nguyen, P. Sinthong, J. Kalagnanam, "A Time Series is Worth 64 Words: Long-term
Forecasting with Transformers", ICLR 2023. CCM integration as in Chen et al., NeurIPS 2024: only the flatten
head ``Linear(d_model * patch_num -> H)`` becomes cluster-aware.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sigattn.models.forecasting.base import ChannelMixing, Forecaster, StrategyLinear

__all__ = ["PatchTST"]


class PatchTST(Forecaster):
    """Patches of each channel -> Transformer encoder (shared by channels) -> flatten head.

    The window is padded at the end by repeating its last value ``stride`` times (PatchTST's ``padding='end'``),
    so ``patch_num = (L - patch_len) // stride + 2``.

    Args:
        seq_len: lookback ``L``.
        pred_len: horizon ``H``.
        channel_strategy: ``"ci"`` (native), ``"cd"`` (residual channel mixing of the input) or ``"ccm"``.
        n_channels: channel count (``cd`` only).
        n_clusters: ``K`` (``ccm`` only).
        patch_len: patch length (16).
        stride: patch stride (8).
        d_model: token width (128).
        n_heads: attention heads (8).
        n_layers: encoder layers (3).
        d_ff: feed-forward width (256).
        dropout: dropout in the encoder and the head (0.2).
        revin: instance normalisation (default ``True``).
        **kw: further :class:`Forecaster` options.

    Example:
        >>> m = PatchTST(96, 24, d_model=16, n_heads=2, n_layers=1, d_ff=32)
        >>> m(torch.randn(2, 3, 96)).shape
        torch.Size([2, 3, 24])
    """

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        channel_strategy: str = "ci",
        n_channels: int | None = None,
        n_clusters: int = 3,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 128,
        n_heads: int = 8,
        n_layers: int = 3,
        d_ff: int = 256,
        dropout: float = 0.2,
        revin: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(seq_len, pred_len, channel_strategy, n_channels, n_clusters, revin=revin, **kw)
        if patch_len > seq_len or stride < 1:
            raise ValueError(
                f"need 1 <= stride and patch_len <= seq_len, got {patch_len=}, {stride=}, {seq_len=}"
            )
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.patch_len, self.stride = patch_len, stride
        self.patch_num = (seq_len - patch_len) // stride + 2
        self.mixing = ChannelMixing(n_channels) if channel_strategy == "cd" else None
        self.embed = nn.Linear(patch_len, d_model)
        self.pos = nn.Parameter(torch.empty(self.patch_num, d_model).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, d_ff, dropout, activation="gelu", batch_first=True, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = StrategyLinear(d_model * self.patch_num, pred_len, channel_strategy, n_clusters)
        self.head_drop = nn.Dropout(dropout)

    def _forecast(self, z: Tensor, prob: Tensor | None) -> Tensor:
        if self.mixing is not None:
            z = self.mixing(z)
        b, c, _ = z.shape
        z = F.pad(z, (0, self.stride), mode="replicate")
        patches = z.unfold(-1, self.patch_len, self.stride)  # (B, C, N, P)
        tokens = self.embed(patches).reshape(b * c, self.patch_num, -1) + self.pos
        h = self.encoder(self.drop(tokens))  # (B*C, N, D)
        h = self.head_drop(h.reshape(b, c, -1))
        return self.head(h, prob)
