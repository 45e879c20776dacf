"""ECAPA-TDNN speaker-embedding network (paper layout), built from ``sigattn.layers``.

Desplanques, Thienpondt & Demuynck, "ECAPA-TDNN: Emphasized Channel Attention, Propagation and Aggregation in
TDNN Based Speaker Verification", Interspeech 2020, arXiv 2005.07143.

Layout (C = 512 or 1024): Conv1d(80 -> C, k=5) + ReLU + BN; three SE-Res2Blocks (k=3, dilations 2, 3, 4,
Res2Net scale 8, SE bottleneck 128); multi-layer feature aggregation Conv1d(3C -> 1536, k=1) + ReLU;
attentive statistics pooling with global context (bottleneck 128, conv -> tanh -> conv); BN(3072);
Linear(3072 -> 192). Parameter counts: 6,190,720 (C=512) and 14,657,088 (C=1024), WeSpeaker's published
6.19 M / 14.65 M. The SpeechBrain layout lives in ``sigattn.models.ecapa_speechbrain``.

Exact masking: convolutions use zero "same" padding and, when ``lengths`` is given, padded frames are set to
zero before every convolution with a kernel wider than 1, so each valid frame sees exactly the zeros it
would see at the end of the utterance alone; SE and pooling statistics are masked. In ``eval()`` a padded
batch therefore gives each item's single-utterance embedding (to float tolerance). In ``train()`` BatchNorm
batch statistics include padded frames; training uses fixed-length crops, where this does not arise.

Block attention (``attention=``): the SE gate of each SE-Res2Block is a choice resolved through
``sigattn.layers.create_channel_attention`` (timm's ``attn_layer`` idea): ``"se"`` (default, the paper),
``"eca"``, ``"cbam"``, ``"none"`` (identity, no parameters) or any name added with
``register_channel_attention`` whose layer maps ``(B, C, T)`` to ``(B, C, T)`` with
``forward(x, lengths=None)``. Whatever is chosen sits in the ``se`` attribute (timm keeps ``self.se`` for any
``attn_layer`` too), so the default model's state_dict keys are today's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sigattn.layers import (
    ALIASES,
    CHANNEL_ATTENTION,
    AttentiveStatsPool,
    ChannelAttentionPool,
    ChannelSelect,
    ParameterGuidedChannelAttention,
    create_channel_attention,
)
from sigattn.layers._masking import lengths_to_mask

__all__ = [
    "ECAPATDNN",
    "ConvReluBn",
    "NoAttention",
    "SERes2Block",
    "apply_block_attention",
    "block_attention_names",
    "create_block_attention",
    "ecapa_c512",
    "ecapa_c1024",
]

#: Registered layers that pool, select or need side inputs instead of re-weighting ``(B, C, T)`` in place:
#: they cannot fill an SE-Res2Block's gate slot, so ``attention=`` refuses them (and any subclass).
_NOT_BLOCK_ATTENTION: tuple[type[nn.Module], ...] = (
    AttentiveStatsPool,
    ChannelAttentionPool,
    ChannelSelect,
    ParameterGuidedChannelAttention,
)


class NoAttention(nn.Module):
    """``attention="none"``: the identity with the gates' ``forward(x, lengths=None)`` signature; no parameters."""

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return x


def block_attention_names() -> list[str]:
    """Names ``attention=`` accepts now: ``"none"`` and every registered re-weighting layer (plus aliases).

    Example:
        >>> ", ".join(block_attention_names()[:4])
        'cbam, eca, none, se'
    """
    names = [k for k, cls in CHANNEL_ATTENTION.items() if not issubclass(cls, _NOT_BLOCK_ATTENTION)]
    names = sorted({"none", *names})
    return names + sorted(a for a, k in ALIASES.items() if k in names)


def create_block_attention(
    attention: str,
    channels: int,
    se_channels: int = 128,
    attention_kwargs: dict | None = None,
    owner: str = "ECAPATDNN",
) -> nn.Module:
    """The gate of one SE-Res2Block: ``create_channel_attention(attention, channels, **kwargs)``.

    ``"none"`` gives :class:`NoAttention`. For ``"se"`` (and its aliases) the bottleneck is ``se_channels``
    (``rd_channels``) unless ``attention_kwargs`` sets it; other layers keep their own defaults (ECA's
    adaptive kernel, CBAM's ``C / 16`` bottleneck without bias) and take ``attention_kwargs`` as given.

    Raises:
        ValueError: an unknown name, or a registered layer that is not a ``(B, C, T) -> (B, C, T)`` gate
            (``asp``, ``channel_pool``, ``channel_select``, ``param_guided``); the message lists valid names.
        TypeError: ``attention`` is not a str, or ``attention_kwargs`` do not fit the layer's constructor.

    Example:
        >>> create_block_attention("eca", 512).kernel_size, create_block_attention("se", 512).rd_channels
        (5, 128)
    """
    key, kwargs = _resolve_block_attention(attention, se_channels, attention_kwargs, owner)
    if key == "none":
        return NoAttention()
    try:
        return create_channel_attention(key, channels, **kwargs)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{owner}: attention={attention!r} with attention_kwargs={kwargs}: {e}") from e


def _resolve_block_attention(
    attention: str, se_channels: int, attention_kwargs: dict | None, owner: str
) -> tuple[str, dict]:
    """Canonical name and constructor kwargs, validated without building anything (no RNG draws)."""
    names = block_attention_names()
    aliases = [n for n in names if n in ALIASES]
    valid = ", ".join(n for n in names if n not in ALIASES) + (
        f" (aliases: {', '.join(aliases)})" if aliases else ""
    )
    if not isinstance(attention, str):
        raise TypeError(f"{owner}: attention must be a str (one of {valid}), got {type(attention).__name__}")
    if attention_kwargs is not None and not isinstance(attention_kwargs, dict):
        raise TypeError(f"{owner}: attention_kwargs must be a dict, got {type(attention_kwargs).__name__}")
    key = ALIASES.get(attention.lower(), attention.lower())
    kwargs = dict(attention_kwargs or {})
    if key == "none":
        if kwargs:
            raise TypeError(f"{owner}: attention='none' takes no attention_kwargs, got {kwargs}")
        return key, kwargs
    if key not in CHANNEL_ATTENTION:
        raise ValueError(f"{owner}: unknown attention {attention!r}; valid names: {valid}")
    if issubclass(CHANNEL_ATTENTION[key], _NOT_BLOCK_ATTENTION):
        raise ValueError(
            f"{owner}: attention {attention!r} ({CHANNEL_ATTENTION[key].__name__}) is not a (B, C, T) -> "
            f"(B, C, T) channel gate and cannot replace SE in an SE-Res2Block; valid names: {valid}"
        )
    if key == "se":
        kwargs.setdefault("rd_channels", se_channels)
    return key, kwargs


def apply_block_attention(gate: nn.Module, h: Tensor, lengths: Tensor | None) -> Tensor:
    """``gate(h, lengths)``, checked to keep ``h``'s shape (a registered layer that pools would not)."""
    out = gate(h, lengths)
    if not (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()):
        if out.shape != h.shape:
            raise ValueError(
                f"block attention {type(gate).__name__} must return its input's shape {tuple(h.shape)}, "
                f"got {tuple(out.shape)}"
            )
    return out


def _mask(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x.masked_fill(~mask, 0.0)


class ConvReluBn(nn.Module):
    """``BN(ReLU(Conv1d(x)))`` with zero "same" padding; padded frames are zeroed first when masked."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=pad)
        self.act = nn.ReLU()
        self.norm = nn.BatchNorm1d(out_channels)
        self.kernel_size = kernel_size

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.kernel_size > 1:
            x = _mask(x, mask)
        return self.norm(self.act(self.conv(x)))


class Res2Conv(nn.Module):
    """Res2Net dilated convolution: chunk 0 passes unchanged, ``y_1 = K_1(x_1)``, ``y_i = K_i(x_i + y_{i-1})``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int = 8) -> None:
        super().__init__()
        if channels % scale:
            raise ValueError(f"Res2Conv: channels {channels} must be divisible by scale {scale}")
        width = channels // scale
        self.scale = scale
        self.blocks = nn.ModuleList(ConvReluBn(width, width, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        chunks = torch.chunk(x, self.scale, dim=1)
        out = [chunks[0]]
        y = chunks[0]
        for i, block in enumerate(self.blocks):
            y = block(chunks[i + 1] if i == 0 else chunks[i + 1] + y, mask)
            out.append(y)
        return torch.cat(out, dim=1)


class SERes2Block(nn.Module):
    """1x1 ConvReluBn -> Res2Net dilated conv -> 1x1 ConvReluBn -> channel gate (masked) -> + input.

    The gate is ``create_block_attention(attention, channels, se_channels, attention_kwargs)``, squeeze-excite
    with bottleneck ``se_channels`` by default; it is stored as ``se`` whatever it is.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation: int = 2,
        scale: int = 8,
        se_channels: int = 128,
        attention: str = "se",
        attention_kwargs: dict | None = None,
    ):
        super().__init__()
        self.tdnn1 = ConvReluBn(channels, channels, 1)
        self.res2net = Res2Conv(channels, kernel_size, dilation, scale)
        self.tdnn2 = ConvReluBn(channels, channels, 1)
        self.se = create_block_attention(attention, channels, se_channels, attention_kwargs, "SERes2Block")

    def forward(self, x: Tensor, lengths: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        h = self.tdnn2(self.res2net(self.tdnn1(x), mask))
        return x + apply_block_attention(self.se, h, lengths)


class ECAPATDNN(nn.Module):
    """ECAPA-TDNN embedding network: ``(B, n_mels, T)`` features (+ ``lengths``) -> ``(B, embed_dim)``.

    Args:
        in_channels: feature bins (80).
        channels: block width ``C`` (512 or 1024 in the paper).
        mfa_channels: width after multi-layer feature aggregation (1536).
        embed_dim: embedding size (192).
        dilations: one SE-Res2Block per dilation (2, 3, 4).
        scale: Res2Net scale (8). se_channels: SE bottleneck (128).
        attention_channels: pooling bottleneck (128). global_context: utterance mean/std in the attention.
        emb_bn: BatchNorm after the final linear layer (WeSpeaker's ``emb_bn``; off in the paper count).
        attention: each SE-Res2Block's channel gate: ``"se"`` (paper), ``"eca"``, ``"cbam"``, ``"none"`` or a
            name registered with ``register_channel_attention`` (see :func:`create_block_attention`). Not to
            be confused with the :meth:`attention` method, which returns the pooling weights.
        attention_kwargs: extra constructor arguments of that layer (``se_channels`` is SE's default
            bottleneck; ``{"rd_channels": 64}`` overrides it, and sets CBAM's).

    Example:
        >>> model = ECAPATDNN(channels=64, mfa_channels=96, embed_dim=32).eval()
        >>> model(torch.randn(2, 80, 120), lengths=torch.tensor([120, 70])).shape
        torch.Size([2, 32])
        >>> type(ECAPATDNN(channels=64, mfa_channels=96, attention="eca").blocks[0].se).__name__
        'ECA'
    """

    def __init__(
        self,
        in_channels: int = 80,
        channels: int = 512,
        mfa_channels: int = 1536,
        embed_dim: int = 192,
        dilations: tuple[int, ...] = (2, 3, 4),
        kernel_size: int = 3,
        scale: int = 8,
        se_channels: int = 128,
        attention_channels: int = 128,
        global_context: bool = True,
        emb_bn: bool = False,
        attention: str = "se",
        attention_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.embed_dim = in_channels, embed_dim
        # a bad name is reported against ECAPATDNN before any layer is built (validation draws no random numbers)
        _resolve_block_attention(attention, se_channels, attention_kwargs, "ECAPATDNN")
        self.layer1 = ConvReluBn(in_channels, channels, 5)
        self.blocks = nn.ModuleList(
            SERes2Block(channels, kernel_size, d, scale, se_channels, attention, attention_kwargs)
            for d in dilations
        )
        self.mfa = nn.Conv1d(channels * len(dilations), mfa_channels, 1)
        self.mfa_act = nn.ReLU()
        self.pool = AttentiveStatsPool(mfa_channels, attention_channels, global_context, tdnn_norm=False)
        self.pool_bn = nn.BatchNorm1d(2 * mfa_channels)
        self.fc = nn.Linear(2 * mfa_channels, embed_dim)
        self.emb_bn = nn.BatchNorm1d(embed_dim) if emb_bn else nn.Identity()

    def _check(self, x: Tensor, lengths: Tensor | None) -> None:
        if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ECAPATDNN: expected features (B, {self.in_channels}, T), got shape {tuple(x.shape)}"
                + (
                    " (time and feature axes swapped?)"
                    if x.dim() == 3 and x.shape[2] == self.in_channels
                    else ""
                )
            )
        if lengths is not None:
            if lengths.dim() != 1 or lengths.shape[0] != x.shape[0] or lengths.dtype.is_floating_point:
                raise ValueError(
                    f"ECAPATDNN: lengths must be an integer tensor (B={x.shape[0]},), got {lengths}"
                )
            if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[-1]:
                raise ValueError(
                    f"ECAPATDNN: lengths must lie in [1, T={x.shape[-1]}], got {lengths.tolist()}"
                )

    def frame_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The aggregated frame-level features ``(B, mfa_channels, T)`` before pooling."""
        self._check(x, lengths)
        mask = lengths_to_mask(lengths, x.shape[-1], x)
        h = self.layer1(x, mask)
        outs = []
        for block in self.blocks:
            h = block(h, lengths, mask)
            outs.append(h)
        return self.mfa_act(self.mfa(torch.cat(outs, dim=1)))

    def attention(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Attentive-pooling weights ``(B, mfa_channels, T)`` (what each channel listens to over time)."""
        return self.pool.attention(self.frame_features(x, lengths), lengths)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = self.pool(self.frame_features(x, lengths), lengths)
        return self.emb_bn(self.fc(self.pool_bn(h)))


def ecapa_c512(**kw) -> ECAPATDNN:
    """The paper's C=512 model (6,190,720 parameters with the defaults)."""
    return ECAPATDNN(channels=512, **kw)


def ecapa_c1024(**kw) -> ECAPATDNN:
    """The paper's C=1024 model (14,657,088 parameters with the defaults)."""
    return ECAPATDNN(channels=1024, **kw)
