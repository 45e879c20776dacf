"""Additive attention pooling over channel tokens (DBConformer's spatial channel attention).

Reference: Wang, Wang, Jia, He, Li, Wu, "DBConformer: Dual-Branch Convolutional Transformer for EEG
Decoding", IEEE JBHI 30(5), 2026, arXiv 2506.21140 (``spatial_attn_pool``). The scoring is Bahdanau
additive attention (Bahdanau, Cho, Bengio, ICLR 2015) as used for attention-based multiple-instance
pooling (Ilse, Tomczak, Welling, ICML 2018).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._masking import check_finite_values, finite_check_enabled, masked_softmax

__all__ = ["ChannelAttentionPool"]


class ChannelAttentionPool(nn.Module):
    """``s_c = w2^T tanh(W1 h_c + b1) + b2``, ``alpha = softmax_c(s)``, output ``sum_c alpha_c h_c``.

    Shapes: tokens ``h`` are ``(B, C, D)`` (one ``D``-dim token per channel, any number of channels ``C``);
    ``forward`` returns ``(B, D)``; ``attention`` returns ``alpha`` ``(B, C)``. ``lengths`` ``(B,)``
    optionally gives the number of valid channel tokens per item (channels ``>= lengths`` are padding and get
    weight exactly 0), for batches of recordings with different montages.

    Args:
        embed_dim: token size ``D``.
        hidden_dim: size of ``W1``'s output (default ``D``, as in DBConformer: 40 -> 40 -> 1).

    Parameter count: ``D*H + H + H + 1``.

    Example:
        >>> pool = ChannelAttentionPool(40)
        >>> tokens = torch.randn(8, 22, 40)
        >>> pool(tokens).shape, round(pool.attention(tokens).sum(-1)[0].item(), 5)
        (torch.Size([8, 40]), 1.0)
    """

    def __init__(self, embed_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = embed_dim if hidden_dim is None else hidden_dim
        for name, v in (("embed_dim", embed_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"ChannelAttentionPool: {name} must be a positive int, got {v!r}")
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.proj = nn.Linear(embed_dim, hidden_dim)  # W1, b1
        self.tanh = nn.Tanh()
        # w2, b2; b2 adds the same value to every score, so the softmax ignores it: kept for parameter
        # parity with the paper's formula (and its hand parameter counts), it never receives a gradient
        self.score = nn.Linear(hidden_dim, 1)

    def _check(self, tokens: Tensor, lengths: Tensor | None) -> None:
        name = "ChannelAttentionPool"
        if not isinstance(tokens, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(tokens).__name__}")
        if tokens.dim() != 3:
            raise ValueError(f"{name}: expected channel tokens (B, C, D), got shape {tuple(tokens.shape)}")
        if tokens.shape[-1] != self.embed_dim:
            raise ValueError(
                f"{name}: built for token size D={self.embed_dim}, got {tokens.shape[-1]} "
                f"in tokens of shape {tuple(tokens.shape)}"
            )
        if lengths is not None:
            if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.shape[0] != tokens.shape[0]:
                got = tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths).__name__
                raise ValueError(
                    f"{name}: lengths must be a 1-D tensor of size B={tokens.shape[0]}, got {got}"
                )
            if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
                raise ValueError(
                    f"{name}: lengths must be an integer tensor of valid channels, got {lengths.dtype}"
                )
            lo, hi = int(lengths.min()), int(lengths.max())
            if lo < 1 or hi > tokens.shape[1]:
                raise ValueError(
                    f"{name}: lengths must lie in [1, C={tokens.shape[1]}], got values in [{lo}, {hi}]"
                )
        if finite_check_enabled():
            valid = None
            if lengths is not None:
                steps = torch.arange(tokens.shape[1], device=tokens.device)
                valid = (steps[None, :] < lengths.to(tokens.device)[:, None]).unsqueeze(-1)
            check_finite_values(tokens, name, valid)

    @torch.jit.export
    def attention(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Channel weights ``alpha`` ``(B, C)``, summing to 1 over the valid channels of each item."""
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(tokens, lengths)
        scores = self.score(self.tanh(self.proj(tokens))).squeeze(-1)
        mask: Tensor | None = None
        if lengths is not None:
            steps = torch.arange(tokens.shape[1], device=tokens.device)
            mask = steps[None, :] < lengths.to(tokens.device)[:, None]
        return masked_softmax(scores, mask, dim=-1)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        alpha = self.attention(tokens, lengths)
        if lengths is not None:
            steps = torch.arange(tokens.shape[1], device=tokens.device)
            valid = (steps[None, :] < lengths.to(tokens.device)[:, None]).unsqueeze(-1)
            tokens = tokens.masked_fill(~valid, 0.0)
        return torch.bmm(alpha.unsqueeze(1), tokens).squeeze(1)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, hidden_dim={self.hidden_dim}"
