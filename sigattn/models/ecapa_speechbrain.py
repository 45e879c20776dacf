"""SpeechBrain-compatible ECAPA-TDNN: SpeechBrain's ``ECAPA_TDNN`` layout, loadable from its checkpoints.

Desplanques et al., "ECAPA-TDNN", Interspeech 2020 (arXiv 2005.07143), as implemented in SpeechBrain
(Ravanelli et al. 2021, ``speechbrain/lobes/models/ECAPA_TDNN.py``, Apache-2.0; this is an independent
implementation of the same layout). Differences from ``sigattn.models.ecapa`` (the paper layout): reflect
"same" padding, a channel list (``[1024, 1024, 1024, 1024, 3072]`` in the public VoxCeleb model), BN after
the MFA convolution, ReLU + BN inside the pooling attention, and a 1x1 convolution as the final layer.

Masking (``masking``):
    ``"exact"`` (default): when ``lengths`` is given, every reflect-padded convolution reflects each item
    at its own last valid frame (a per-item index gather), so a padded batch gives each item's
    single-utterance embedding, as the house convention requires.
    ``"speechbrain"``: SpeechBrain's own behaviour, where only SE and pooling are masked and padding leaks
    through the convolutions (speechbrain issues #1374, #968); use it to reproduce SpeechBrain's batched
    outputs bit for bit.

``lengths`` are integer frame counts (house convention); :func:`relative_to_frames` converts SpeechBrain's
relative lengths with its rounding (frame ``t`` is valid when ``t < rel * T``).

Block attention (``attention=``, default ``"se"``, SpeechBrain's): each SE-Res2Net block's gate is resolved
like ``sigattn.models.ecapa``'s (``se | eca | cbam | none`` or a registered layer) and is stored as
``se_block`` whatever it is, so the default keeps SpeechBrain's checkpoint keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sigattn.layers import AttentiveStatsPool
from sigattn.layers._masking import lengths_to_mask
from sigattn.models.ecapa import _resolve_block_attention, apply_block_attention, create_block_attention

__all__ = [
    "SpeechBrainECAPA",
    "convert_speechbrain_state_dict",
    "load_speechbrain_checkpoint",
    "relative_to_frames",
]


def relative_to_frames(rel: Tensor, max_len: int) -> Tensor:
    """SpeechBrain relative lengths -> valid frame counts, with SpeechBrain's rule ``t < rel * T``."""
    return torch.ceil(rel.double() * max_len).clamp(1, max_len).long()


def _reflect_index(lengths: Tensor, total: int, pad: int) -> Tensor:
    """Indices ``(B, total + 2 pad)`` that reflect-pad each item at its own length."""
    i = torch.arange(-pad, total + pad, device=lengths.device)[None, :]
    last = (lengths[:, None] - 1).clamp_min(0)
    j = torch.where(i < 0, -i, i)
    j = torch.where(j > last, 2 * last - j, j)
    return torch.minimum(j.clamp_min(0), last)


class TDNNBlock(nn.Module):
    """SpeechBrain ``TDNNBlock``: reflect-padded "same" Conv1d -> ReLU -> BatchNorm1d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        self.pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.act = nn.ReLU()
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.pad > 0:
            if lengths is None:
                x = F.pad(x, (self.pad, self.pad), mode="reflect")
            else:
                idx = _reflect_index(lengths, x.shape[-1], self.pad)
                x = x.gather(2, idx[:, None, :].expand(x.shape[0], x.shape[1], idx.shape[1]))
        return self.norm(self.act(self.conv(x)))


class Res2NetBlock(nn.Module):
    """Chunk 0 unchanged; ``y_1 = K_1(x_1)``, ``y_i = K_i(x_i + y_{i-1})``."""

    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        if channels % scale:
            raise ValueError(f"Res2NetBlock: channels {channels} must be divisible by scale {scale}")
        self.scale = scale
        w = channels // scale
        self.blocks = nn.ModuleList(TDNNBlock(w, w, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        chunks = torch.chunk(x, self.scale, dim=1)
        out, y = [chunks[0]], chunks[0]
        for i, block in enumerate(self.blocks):
            y = block(chunks[i + 1] if i == 0 else chunks[i + 1] + y, lengths)
            out.append(y)
        return torch.cat(out, dim=1)


class SERes2NetBlock(nn.Module):
    """tdnn1 (k=1) -> Res2Net -> tdnn2 (k=1) -> channel gate (SE by default, masked) -> + residual."""

    def __init__(
        self,
        channels: int,
        scale: int,
        se_channels: int,
        kernel_size: int,
        dilation: int,
        attention: str = "se",
        attention_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.tdnn1 = TDNNBlock(channels, channels, 1)
        self.res2net_block = Res2NetBlock(channels, scale, kernel_size, dilation)
        self.tdnn2 = TDNNBlock(channels, channels, 1)
        self.se_block = create_block_attention(
            attention, channels, se_channels, attention_kwargs, "SERes2NetBlock"
        )

    def forward(self, x: Tensor, lengths: Tensor | None, conv_lengths: Tensor | None) -> Tensor:
        h = self.tdnn2(self.res2net_block(self.tdnn1(x), conv_lengths))
        return x + apply_block_attention(self.se_block, h, lengths)


class SpeechBrainECAPA(nn.Module):
    """SpeechBrain's ``ECAPA_TDNN`` layout: ``(B, n_mels, T)`` (+ integer ``lengths``) -> ``(B, lin_neurons)``.

    Args:
        input_size: feature bins (80).
        channels: ``[C0, C1, C2, C3, C_mfa]``; SpeechBrain's default ``[512]*4 + [1536]`` (6,194,048
            parameters), its VoxCeleb model ``[1024]*4 + [3072]`` (20,767,552).
        lin_neurons: embedding size (192).
        kernel_sizes: per entry of ``channels`` (``[5, 3, 3, 3, 1]``).
        dilations: per entry of ``channels`` (``[1, 2, 3, 4, 1]``).
        attention_channels: pooling bottleneck (128).
        res2net_scale: Res2Net scale (8).
        se_channels: SE bottleneck (128).
        global_context: utterance mean/std in the pooling attention.
        masking: ``"exact"`` or ``"speechbrain"`` (see the module docstring).
        attention: each SE-Res2Net block's gate: ``"se"`` (SpeechBrain's), ``"eca"``, ``"cbam"``, ``"none"`` or a
            registered layer (see :func:`sigattn.models.ecapa.create_block_attention`).
        attention_kwargs: extra constructor arguments of that layer (SE's bottleneck is ``se_channels``).

    Note: input is ``(B, F, T)`` (house layout), output ``(B, lin_neurons)``; SpeechBrain's is ``(B, T, F)``
    -> ``(B, 1, lin_neurons)``.

    Example:
        >>> m = SpeechBrainECAPA(80, channels=[64, 64, 64, 64, 192], lin_neurons=32).eval()
        >>> m(torch.randn(2, 80, 50), torch.tensor([50, 30])).shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        input_size: int = 80,
        lin_neurons: int = 192,
        channels: Sequence[int] = (512, 512, 512, 512, 1536),
        kernel_sizes: Sequence[int] = (5, 3, 3, 3, 1),
        dilations: Sequence[int] = (1, 2, 3, 4, 1),
        attention_channels: int = 128,
        res2net_scale: int = 8,
        se_channels: int = 128,
        global_context: bool = True,
        masking: str = "exact",
        attention: str = "se",
        attention_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        _resolve_block_attention(attention, se_channels, attention_kwargs, "SpeechBrainECAPA")
        if not len(channels) == len(kernel_sizes) == len(dilations) or len(channels) < 3:
            raise ValueError(
                f"channels {channels}, kernel_sizes {kernel_sizes}, dilations {dilations} must align"
            )
        if masking not in ("exact", "speechbrain"):
            raise ValueError(f"masking must be 'exact' or 'speechbrain', got {masking!r}")
        self.input_size, self.masking = input_size, masking
        self.blocks = nn.ModuleList([TDNNBlock(input_size, channels[0], kernel_sizes[0], dilations[0])])
        for i in range(1, len(channels) - 1):
            if channels[i] != channels[i - 1]:
                raise ValueError(
                    f"SE-Res2Net blocks need equal widths (no shortcut conv), got {list(channels)}"
                )
            self.blocks.append(
                SERes2NetBlock(
                    channels[i],
                    res2net_scale,
                    se_channels,
                    kernel_sizes[i],
                    dilations[i],
                    attention,
                    attention_kwargs,
                )
            )
        self.mfa = TDNNBlock(
            channels[-2] * (len(channels) - 2), channels[-1], kernel_sizes[-1], dilations[-1]
        )
        self.asp = AttentiveStatsPool(channels[-1], attention_channels, global_context, tdnn_norm=True)
        self.asp_bn = nn.BatchNorm1d(channels[-1] * 2)
        self.fc = nn.Conv1d(channels[-1] * 2, lin_neurons, 1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            if x.dim() != 3 or x.shape[1] != self.input_size:
                raise ValueError(
                    f"SpeechBrainECAPA: expected (B, {self.input_size}, T) features, got {tuple(x.shape)}"
                )
            if lengths is not None and (lengths.dtype.is_floating_point or lengths.shape != (x.shape[0],)):
                raise ValueError(
                    "SpeechBrainECAPA: lengths must be integer frame counts (B,); convert SpeechBrain's relative "
                    f"lengths with relative_to_frames(), got {lengths.dtype} {tuple(lengths.shape)}"
                )
        conv_lengths = lengths if self.masking == "exact" else None
        x = self.blocks[0](x, conv_lengths)
        outs = []
        for block in self.blocks[1:]:
            x = block(x, lengths, conv_lengths)
            outs.append(x)
        x = self.mfa(torch.cat(outs, dim=1), conv_lengths)
        if lengths is not None and self.masking == "exact":
            x = x.masked_fill(~lengths_to_mask(lengths, x.shape[-1], x), 0.0)
        x = self.asp_bn(self.asp(x, lengths).unsqueeze(-1))
        return self.fc(x).squeeze(-1)


# SpeechBrain key -> sigattn key, applied in order (first match wins)
_KEY_RULES = [
    (r"\.se_block\.conv1\.conv\.", ".se_block.fc1."),
    (r"\.se_block\.conv2\.conv\.", ".se_block.fc2."),
    (r"^asp\.tdnn\.conv\.conv\.", "asp.tdnn.0."),
    (r"^asp\.tdnn\.norm\.norm\.", "asp.tdnn.2."),
    (r"^asp\.conv\.conv\.", "asp.conv."),
    (r"^asp_bn\.norm\.", "asp_bn."),
    (r"^fc\.conv\.", "fc."),
    (r"\.conv\.conv\.", ".conv."),
    (r"\.norm\.norm\.", ".norm."),
]
_PREFIXES = ("mods.embedding_model.", "embedding_model.", "module.")


def convert_speechbrain_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a SpeechBrain ``ECAPA_TDNN`` state_dict to :class:`SpeechBrainECAPA` keys.

    Strips ``mods.embedding_model.`` / ``embedding_model.`` / ``module.`` prefixes; ``num_batches_tracked``
    entries are kept when present (the public checkpoint lacks them; loading tolerates that).
    """
    out = {}
    for key, value in state.items():
        k = key
        for p in _PREFIXES:
            if k.startswith(p):
                k = k[len(p) :]
        for pattern, repl in _KEY_RULES:
            new = re.sub(pattern, repl, k)
            if new != k:
                k = new
                break
        if k.endswith(".conv.conv.weight") or k.endswith(".norm.norm.weight"):
            k = k.replace(".conv.conv.", ".conv.").replace(".norm.norm.", ".norm.")
        out[k] = value
    return out


def _infer_config(state: dict[str, Tensor]) -> dict:
    w0 = state["blocks.0.conv.weight"]
    n_se = len({k.split(".")[1] for k in state if k.startswith("blocks.") and ".tdnn1." in k})
    chans = [w0.shape[0]] + [state[f"blocks.{i}.tdnn1.conv.weight"].shape[0] for i in range(1, n_se + 1)]
    chans.append(state["mfa.conv.weight"].shape[0])
    ks = [w0.shape[2]] + [
        state[f"blocks.{i}.res2net_block.blocks.0.conv.weight"].shape[2] for i in range(1, n_se + 1)
    ]
    scale = len({k.split(".")[4] for k in state if k.startswith("blocks.1.res2net_block.blocks.")}) + 1
    return {
        "input_size": w0.shape[1],
        "lin_neurons": state["fc.weight"].shape[0],
        "channels": chans,
        "kernel_sizes": ks + [state["mfa.conv.weight"].shape[2]],
        "attention_channels": state["asp.conv.weight"].shape[1],
        "res2net_scale": scale,
        "se_channels": state["blocks.1.se_block.fc1.weight"].shape[0],
        "global_context": state["asp.tdnn.0.weight"].shape[1] == 3 * chans[-1],
    }


def load_speechbrain_checkpoint(path: str | Path, masking: str = "exact", **kwargs) -> SpeechBrainECAPA:
    """Build a :class:`SpeechBrainECAPA` from SpeechBrain's ``embedding_model.ckpt`` (a plain state_dict).

    The architecture (channels, kernel sizes, scale, SE/attention widths) is read from the tensor shapes;
    dilations cannot be, so they default to SpeechBrain's ``[1, 2, 3, 4, 1]`` (pass ``dilations=`` otherwise).
    The file is read with ``torch.load(weights_only=True)``. Returns the model in ``eval()`` mode.

    Example:
        >>> model = load_speechbrain_checkpoint("pretrained/embedding_model.ckpt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SpeechBrain checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot read SpeechBrain checkpoint {path}: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (name -> tensor), got {type(state).__name__}")
    state = convert_speechbrain_state_dict(state)
    try:
        cfg = _infer_config(state)
    except KeyError as e:
        raise ValueError(f"{path}: not an ECAPA_TDNN embedding_model state_dict (missing {e})") from e
    cfg.update(kwargs)
    model = SpeechBrainECAPA(masking=masking, **cfg)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: state_dict does not fit: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    return model.eval()
