"""Build any channel-attention layer by name (timm's ``create_attn`` contract: ``channels`` comes first).

Unlike timm's ``get_attn`` (an ``assert`` that vanishes under ``python -O``), an unknown name raises a
``ValueError`` that lists the valid names. The registry is plain data, so tests can check that every
registered layer is built and tested (braindecode's completeness test).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .attentive_pool import AttentiveStatsPool
from .cbam import CBAMChannel
from .channel_pool import ChannelAttentionPool
from .channel_select import ChannelSelect
from .eca import ECA
from .parameter_guided import ParameterGuidedChannelAttention
from .squeeze_excite import SqueezeExcite

__all__ = ["ALIASES", "CHANNEL_ATTENTION", "create_channel_attention", "register_channel_attention"]

#: Canonical name -> layer class. ``channels`` is the first constructor argument of each (for
#: ``channel_pool`` it is the token size ``D``; for ``channel_select`` the features per channel ``F``).
CHANNEL_ATTENTION: dict[str, type[nn.Module]] = {
    "se": SqueezeExcite,
    "eca": ECA,
    "cbam": CBAMChannel,
    "asp": AttentiveStatsPool,
    "channel_pool": ChannelAttentionPool,
    "channel_select": ChannelSelect,
    "param_guided": ParameterGuidedChannelAttention,
}

#: Longer spellings accepted by :func:`create_channel_attention`.
ALIASES: dict[str, str] = {
    "squeeze_excite": "se",
    "squeezeexcite": "se",
    "cbam_channel": "cbam",
    "attentive_stats_pool": "asp",
    "channel_attention_pool": "channel_pool",
    "select": "channel_select",
    "cape": "param_guided",
    "parameter_guided": "param_guided",
}


def register_channel_attention(name: str, cls: type[nn.Module]) -> None:
    """Add a layer class under a new lower-case ``name`` (its first argument must be ``channels``).

    Example:
        >>> register_channel_attention("my_se", SqueezeExcite); del CHANNEL_ATTENTION["my_se"]
    """
    key = name.lower()
    if key in CHANNEL_ATTENTION or key in ALIASES:
        raise ValueError(f"register_channel_attention: name {name!r} is already taken")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_channel_attention: expected an nn.Module subclass, got {cls!r}")
    CHANNEL_ATTENTION[key] = cls


def create_channel_attention(name: str, channels: int, **kwargs: Any) -> nn.Module:
    """Build the layer registered as ``name`` (case-insensitive; aliases allowed) for ``channels``.

    Args:
        name: a key of :data:`CHANNEL_ATTENTION` or :data:`ALIASES`.
        channels: first constructor argument of the layer.
        **kwargs: passed on to the layer's constructor.

    Raises:
        ValueError: for an unknown name, listing the valid ones.

    Example:
        >>> create_channel_attention("eca", 256).kernel_size
        5
        >>> create_channel_attention("se", 512, rd_channels=128).rd_channels
        128
    """
    if not isinstance(name, str):
        raise TypeError(f"create_channel_attention: name must be a str, got {type(name).__name__}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in CHANNEL_ATTENTION:
        valid = ", ".join(sorted(CHANNEL_ATTENTION)) + " (aliases: " + ", ".join(sorted(ALIASES)) + ")"
        raise ValueError(f"create_channel_attention: unknown layer {name!r}; valid names: {valid}")
    return CHANNEL_ATTENTION[key](channels, **kwargs)
