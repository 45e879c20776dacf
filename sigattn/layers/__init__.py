"""Channel-attention building blocks for ``(B, C, T)`` signals: pure torch, exact masking, one registry."""

from .attentive_pool import AttentiveStatsPool
from .channel_pool import ChannelAttentionPool
from .squeeze_excite import SqueezeExcite, make_divisible

__all__ = [
    "AttentiveStatsPool",
    "ChannelAttentionPool",
    "SqueezeExcite",
    "make_divisible",
]
