"""Channel-attention building blocks for ``(B, C, T)`` signals: pure torch, exact masking, one registry."""

from ._masking import set_finite_check
from .attentive_pool import AttentiveStatsPool
from .cbam import CBAMChannel
from .channel_pool import ChannelAttentionPool
from .channel_select import ChannelSelect
from .clustering import ChannelClustering, ClusterAwareLinear, channel_similarity, cluster_loss
from .eca import ECA, eca_kernel_size
from .parameter_guided import ParameterGuidedChannelAttention
from .registry import ALIASES, CHANNEL_ATTENTION, create_channel_attention, register_channel_attention
from .squeeze_excite import SqueezeExcite, make_divisible

__all__ = [
    "ALIASES",
    "CHANNEL_ATTENTION",
    "ECA",
    "AttentiveStatsPool",
    "CBAMChannel",
    "ChannelAttentionPool",
    "ChannelClustering",
    "ChannelSelect",
    "ClusterAwareLinear",
    "ParameterGuidedChannelAttention",
    "SqueezeExcite",
    "channel_similarity",
    "cluster_loss",
    "create_channel_attention",
    "eca_kernel_size",
    "make_divisible",
    "register_channel_attention",
    "set_finite_check",
]
