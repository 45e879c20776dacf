"""iTransformer with CI / CD / CCM channel strategies.

Reference: Y. Liu, T. Hu, H. Zhang, H. Wu, S. Wang, L. Ma, M. Long, "iTransformer: Inverted Transformers Are
Effective for Time Series Forecasting", ICLR 2024. Each channel's whole lookback window is one token; the
encoder attends across channels (CD by design) and a linear projection maps each token to the horizon.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from sigattn.models.forecasting.base import Forecaster, StrategyLinear

__all__ = ["ITransformer"]


class ITransformer(Forecaster):
    """Channel tokens ``Linear(L -> d)`` -> Transformer encoder over channels -> ``Linear(d -> H)``.

    ``cd`` is the original model (attention across channel tokens; it accepts any channel count, so
    ``n_channels`` is not needed); ``ci`` lets each token attend only to itself (each channel alone); ``ccm``
    keeps the cross-channel attention and makes the token embedding and the projection cluster-aware (CCM
    does not define an iTransformer integration; this mirrors its DLinear/TSMixer heads).

    Args:
        seq_len: lookback ``L``.
        pred_len: horizon ``H``.
        channel_strategy: ``"ci"``, ``"cd"`` or ``"ccm"``.
        n_channels: unused (any channel count works); accepted for a uniform constructor.
        n_clusters: ``K`` (``ccm`` only).
        d_model: token width (128).
        n_heads: attention heads (8).
        n_layers: encoder layers (2).
        d_ff: feed-forward width (256).
        dropout: dropout (0.1).
        revin: instance normalisation (default ``True``, iTransformer's ``use_norm``).
        **kw: further :class:`Forecaster` options.

    Example:
        >>> import torch
        >>> ITransformer(96, 24, channel_strategy="cd", d_model=16, n_heads=2)(torch.randn(2, 7, 96)).shape
        torch.Size([2, 7, 24])
    """

    cd_needs_n_channels = False

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        channel_strategy: str = "cd",
        n_channels: int | None = None,
        n_clusters: int = 3,
        d_model: int = 128,
        n_heads: int = 8,
        n_layers: int = 2,
        d_ff: int = 256,
        dropout: float = 0.1,
        revin: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(seq_len, pred_len, channel_strategy, n_channels, n_clusters, revin=revin, **kw)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.embed = StrategyLinear(seq_len, d_model, channel_strategy, n_clusters)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, d_ff, dropout, activation="gelu", batch_first=True, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.proj = StrategyLinear(d_model, pred_len, channel_strategy, n_clusters)

    def _forecast(self, z: Tensor, prob: Tensor | None) -> Tensor:
        tokens = self.drop(self.embed(z, prob))  # (B, C, d)
        b, c, d = tokens.shape
        if self.channel_strategy == "ci":  # one token per sequence: no attention across channels
            h = self.encoder(tokens.reshape(b * c, 1, d)).reshape(b, c, d)
        else:
            h = self.encoder(tokens)
        return self.proj(h, prob)
