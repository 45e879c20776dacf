"""DBConformer: a dual-branch convolutional transformer for EEG decoding.

Reference: Z. Wang, S. Wang, X. Jia, H. He, S. Li, D. Wu, "DBConformer: Dual-Branch Convolutional Transformer
for EEG Decoding", IEEE JBHI 30(5):4134-4147, 2026 (arXiv 2506.21140). Re-implemented from the description in
``shared/reference/eeg_motor_imagery.md`` (the authors' code is under a noncommercial licence and was not used).

Two branches read the same trial ``(B, C, T)``:

* the **temporal** branch (T-Conformer) mixes electrodes with a pointwise convolution, filters each virtual
  channel with a depthwise temporal convolution, average-pools into patch tokens (0.5 s each by default) and
  runs a pre-LN transformer over the tokens;
* the **spatial** branch (S-Conformer) turns each electrode into one token (strided convolution, ELU, global
  average, linear), adds a per-electrode embedding and runs a transformer across electrodes; additive channel
  attention (:class:`sigattn.layers.ChannelAttentionPool`, ``spatial_pool="channel_pool"``) pools the
  electrode tokens; ``spatial_pool`` switches it to a plain mean or to any token pool of the layer registry.
  :meth:`DBConformer.channel_weights` returns its weights rolled out through the spatial transformer's
  attention to the input electrodes (or, with ``method="pool"``, the raw weights over the mixed tokens).

The two pooled vectors are concatenated and classified by an MLP ``2D -> 64 -> 32 -> n_outputs``.
``branch_dropout > 0`` (off by default; not in the paper) zeroes one branch's vector per training sample
at random, so that each branch alone must carry class information, and ``electrode_embedding_std`` (1.0 =
the paper's ``randn``) scales the initial electrode embeddings (see ``docs/eeg.md``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sigattn.layers import ALIASES, CHANNEL_ATTENTION, ChannelAttentionPool, create_channel_attention

__all__ = ["DBConformer", "ConformerBlock"]


class _MultiHeadAttention(nn.Module):
    """Multi-head self-attention with separate Q/K/V projections and a configurable softmax scale.

    EEG Conformer (and DBConformer after it) divides the scores by ``sqrt(emb_size)`` instead of
    ``sqrt(head_dim)``; ``scale`` keeps that choice explicit.
    """

    def __init__(self, emb_size: int, n_heads: int, dropout: float, scale: float) -> None:
        super().__init__()
        if emb_size % n_heads:
            raise ValueError(f"emb_size ({emb_size}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.scale = scale
        self.query = nn.Linear(emb_size, emb_size)
        self.key = nn.Linear(emb_size, emb_size)
        self.value = nn.Linear(emb_size, emb_size)
        self.proj = nn.Linear(emb_size, emb_size)
        self.att_drop = nn.Dropout(dropout)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention ``(B, heads, N, N)`` (row ``i``: how token ``i`` reads the tokens), no dropout."""
        b, n, d = x.shape
        h = self.n_heads
        q = self.query(x).reshape(b, n, h, d // h).transpose(1, 2)
        k = self.key(x).reshape(b, n, h, d // h).transpose(1, 2)
        return torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.n_heads
        att = self.attention_map(x)
        v = self.value(x).reshape(b, n, h, d // h).transpose(1, 2)
        out = self.att_drop(att) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class ConformerBlock(nn.Module):
    """Pre-LN transformer block: ``x + Drop(MHA(LN(x)))``, then ``x + Drop(FFN(LN(x)))``.

    FFN is ``Linear(D, e*D) -> GELU -> Dropout -> Linear(e*D, D)``; the attention scale is ``1/sqrt(D)``.

    Example:
        >>> ConformerBlock(40)(torch.randn(2, 8, 40)).shape
        torch.Size([2, 8, 40])
    """

    def __init__(
        self, emb_size: int, n_heads: int = 10, ffn_expansion: int = 4, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(emb_size)
        self.attn = _MultiHeadAttention(emb_size, n_heads, dropout, scale=1.0 / math.sqrt(emb_size))
        self.drop1 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(emb_size)
        self.ffn = nn.Sequential(
            nn.Linear(emb_size, ffn_expansion * emb_size),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_expansion * emb_size, emb_size),
        )
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop1(self.attn(self.norm1(x)))
        return x + self.drop2(self.ffn(self.norm2(x)))


def _resolve_signal_args(
    n_chans: int | None,
    n_times: int | None,
    sfreq: float | None,
    chs_info: Sequence[Any] | None,
    input_window_seconds: float | None,
) -> tuple[int, int, float | None, list[str] | None]:
    """braindecode's rules: derive missing arguments, reject inconsistent ones."""
    ch_names = None
    if chs_info is not None:
        ch_names = [c["ch_name"] if isinstance(c, dict) else str(c) for c in chs_info]
        if n_chans is not None and n_chans != len(ch_names):
            raise ValueError(f"n_chans={n_chans} but chs_info lists {len(ch_names)} channels")
        n_chans = len(ch_names)
    if input_window_seconds is not None:
        if n_times is None and sfreq is not None:
            n_times = int(round(input_window_seconds * sfreq))
        elif sfreq is None and n_times is not None:
            sfreq = n_times / input_window_seconds
        elif (
            n_times is not None and sfreq is not None and n_times != int(round(input_window_seconds * sfreq))
        ):
            raise ValueError(
                f"n_times={n_times} disagrees with input_window_seconds={input_window_seconds} * sfreq={sfreq}"
            )
    if n_chans is None or n_times is None:
        raise ValueError(f"DBConformer needs n_chans (or chs_info) and n_times; got {n_chans=}, {n_times=}")
    if n_chans < 1 or n_times < 1:
        raise ValueError(f"n_chans and n_times must be positive, got {n_chans=}, {n_times=}")
    return int(n_chans), int(n_times), sfreq, ch_names


def _token_pool_problem(layer: nn.Module, n_tokens: int, dim: int) -> str | None:
    """Why ``layer`` is not a token pool (``forward: (B, C, D) -> (B, D)``, ``attention -> (B, C)``), or None.

    Probed on zeros in eval mode without gradients: no parameter, buffer or RNG state changes.
    """
    if not callable(getattr(layer, "attention", None)):
        return "it has no attention(tokens) method giving the channel weights (B, C)"
    was_training = layer.training
    layer.eval()
    tokens = torch.zeros(2, n_tokens, dim)
    try:
        with torch.no_grad():
            out, alpha = layer(tokens), layer.attention(tokens)
    except Exception as e:  # any failure on (B, C, D) tokens means "not a token pool"
        return f"it fails on channel tokens of shape {tuple(tokens.shape)}: {type(e).__name__}: {e}"
    finally:
        layer.train(was_training)
    for what, got, want in (("forward", out, (2, dim)), ("attention", alpha, (2, n_tokens))):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        if shape != want:
            return f"its {what} maps tokens {tuple(tokens.shape)} to {shape}, expected {want}"
    return None


def _valid_spatial_pools(n_chans: int, dim: int) -> str:
    """``mean`` and the registered layers that work as token pools here (for error messages only)."""
    names = ["mean"]
    for name in sorted(CHANNEL_ATTENTION):
        try:
            layer = create_channel_attention(name, dim)
        except Exception:  # a layer that needs more arguments is not a drop-in pool
            continue
        if _token_pool_problem(layer, n_chans, dim) is None:
            names.append(name)
    return ", ".join(names) + " (or a token pool added with sigattn.layers.register_channel_attention)"


def _build_spatial_pool(name: str, n_chans: int, dim: int, kwargs: dict | None) -> nn.Module | None:
    """The spatial branch's pool: None for ``"mean"``, else the registered layer ``name`` built for ``D``."""
    if not isinstance(name, str):
        raise TypeError(f"DBConformer: spatial_pool must be a str, got {type(name).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"DBConformer: spatial_pool_kwargs must be a dict, got {type(kwargs).__name__}")
    kwargs = dict(kwargs or {})
    key = ALIASES.get(name.lower(), name.lower())
    if key == "mean":
        if kwargs:
            raise ValueError(f"DBConformer: spatial_pool='mean' takes no arguments, got {kwargs}")
        return None
    if key not in CHANNEL_ATTENTION:
        raise ValueError(
            f"DBConformer: unknown spatial_pool {name!r}; valid: {_valid_spatial_pools(n_chans, dim)}"
        )
    try:
        layer = create_channel_attention(key, dim, **kwargs)
    except (TypeError, ValueError) as e:
        raise type(e)(f"DBConformer: spatial_pool={name!r} with spatial_pool_kwargs={kwargs}: {e}") from e
    problem = _token_pool_problem(layer, n_chans, dim)
    if problem is not None:
        raise ValueError(
            f"DBConformer: spatial_pool {name!r} is not a pool of channel tokens: {problem}; "
            f"valid: {_valid_spatial_pools(n_chans, dim)}"
        )
    return layer


class DBConformer(nn.Module):
    """Dual-branch (temporal + spatial) convolutional transformer with electrode attention.

    ``x (B, C, T) -> logits (B, n_outputs)``. Temporal branch: ``Conv1d(C, D, 1) + BN``, depthwise
    ``Conv1d(D, D, 63) + BN``, GELU, ``AvgPool1d(patch_size)`` into ``P = T // patch_size`` tokens, dropout,
    positional embedding, ``depth_temporal`` pre-LN blocks, mean over tokens. Spatial branch: each electrode
    ``Conv1d(1, 16, 25, stride 5) -> ELU -> mean -> Linear(16, D)``, electrode embedding, ``depth_spatial``
    blocks, additive attention pooling ``alpha = softmax_c(w2^T tanh(W1 h_c + b1) + b2)``. Head on
    ``[x_t; x_s]``: ``Linear(2D, 64) -> ELU -> Drop(0.5) -> Linear(64, 32) -> ELU -> Drop(0.3) -> Linear(32, n)``.

    With 22 channels, 1001 samples at 250 Hz and 2 outputs the model has 93,747 parameters, matching the hand
    count of the reference sheet; 92,066 with ``spatial_pool="mean"`` (the pool's ``D^2 + 2D + 1 = 1,681``
    fewer).

    The spatial pool is a choice (``spatial_pool``), like the attention slot of every sigattn model:

    * ``"channel_pool"`` (default): the paper's additive attention, built by
      ``create_channel_attention("channel_pool", D)``; ``alpha`` is its softmax.
    * ``"mean"``: ``x_s = mean_c h_c``, no parameters (``self.channel_pool`` is None). Its weights are
      uniform, ``alpha_c = 1/C``, so ``channel_weights(x, method="pool")`` is ``1/C`` everywhere and the
      rollout says how much each input electrode contributes to the mean of the mixed tokens.
    * any other name registered with :func:`sigattn.layers.register_channel_attention` whose layer, built as
      ``cls(D)``, maps tokens ``(B, C, D) -> (B, D)`` in ``forward`` and gives weights ``(B, C)`` in
      ``attention`` (checked when the model is built); ``x_s`` is its ``forward``, ``alpha`` its
      ``attention``. The name ``"mean"`` always means the plain mean.

    Args:
        n_chans: electrodes (or give ``chs_info``, MNE's ``info["chs"]`` or a list of names).
        n_outputs: classes.
        n_times: samples per trial.
        sfreq: sampling rate (Hz), used for ``patch_size`` (0.5 s) when that is not given; 125 samples when
            neither is known.
        chs_info: MNE's ``info["chs"]`` or a list of channel names (sets ``n_chans``).
        input_window_seconds: alternative to ``n_times`` / ``sfreq`` (braindecode convention).
        emb_size: transformer width D (40).
        n_heads: attention heads (10).
        ffn_expansion: FFN width factor (4).
        dropout: dropout of the stem and the transformer blocks (0.5).
        depth_temporal: blocks of the temporal branch (2).
        depth_spatial: blocks of the spatial branch (2).
        patch_size: samples per temporal token.
        temporal_kernel: depthwise kernel (63, odd).
        spatial_filters: filters of the per-electrode tokeniser (16).
        spatial_kernel: kernel of the per-electrode tokeniser (25).
        spatial_stride: stride of the per-electrode tokeniser (5).
        spatial_pool: how the spatial branch pools its electrode tokens: ``"channel_pool"`` (the paper),
            ``"mean"`` or a registered token pool (see above); an unknown name is a ``ValueError`` listing
            the valid ones.
        spatial_pool_kwargs: constructor arguments of the pool layer after ``D`` (e.g. ``{"hidden_dim": 16}``
            for ``channel_pool``); none for ``"mean"``.
        channel_attention: deprecated spelling of ``spatial_pool``: ``False`` means ``"mean"``, ``True``
            ``"channel_pool"``.
        branch_dropout: probability of zeroing one branch's features per training sample (0 = the paper).
        electrode_embedding_std: standard deviation of the initial per-electrode embeddings of the spatial
            branch (1.0 = the paper's ``randn``; not in the paper when changed). With ``randn`` each embedding
            has norm ~``sqrt(D)`` (6.3 for D = 40) against ~1 for the signal part of a token.

    Example:
        >>> m = DBConformer(n_chans=22, n_outputs=2, n_times=1001, sfreq=250)
        >>> sum(p.numel() for p in m.parameters())
        93747
        >>> m(torch.randn(3, 22, 1001)).shape, m.channel_weights(torch.randn(3, 22, 1001)).shape
        (torch.Size([3, 2]), torch.Size([3, 22]))
    """

    def __init__(
        self,
        n_chans: int | None = None,
        n_outputs: int = 2,
        n_times: int | None = None,
        sfreq: float | None = None,
        chs_info: Sequence[Any] | None = None,
        input_window_seconds: float | None = None,
        *,
        emb_size: int = 40,
        n_heads: int = 10,
        ffn_expansion: int = 4,
        dropout: float = 0.5,
        depth_temporal: int = 2,
        depth_spatial: int = 2,
        patch_size: int | None = None,
        temporal_kernel: int = 63,
        spatial_filters: int = 16,
        spatial_kernel: int = 25,
        spatial_stride: int = 5,
        spatial_pool: str = "channel_pool",
        spatial_pool_kwargs: dict | None = None,
        channel_attention: bool | None = None,
        branch_dropout: float = 0.0,
        electrode_embedding_std: float = 1.0,
    ) -> None:
        super().__init__()
        n_chans, n_times, sfreq, ch_names = _resolve_signal_args(
            n_chans, n_times, sfreq, chs_info, input_window_seconds
        )
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        if patch_size is None:
            patch_size = int(round(0.5 * sfreq)) if sfreq else 125
        if not 1 <= patch_size <= n_times:
            raise ValueError(f"patch_size={patch_size} must be in [1, n_times={n_times}]")
        if not 0.0 <= branch_dropout < 1.0:
            raise ValueError(f"branch_dropout must be in [0, 1), got {branch_dropout}")
        if not (electrode_embedding_std >= 0.0 and math.isfinite(electrode_embedding_std)):
            raise ValueError(
                f"electrode_embedding_std must be finite and >= 0, got {electrode_embedding_std}"
            )
        if temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd (same-length padding), got {temporal_kernel}")
        if channel_attention is not None:
            want = "channel_pool" if channel_attention else "mean"
            if spatial_pool not in ("channel_pool", want):
                raise ValueError(
                    f"DBConformer: channel_attention={channel_attention} contradicts "
                    f"spatial_pool={spatial_pool!r}; give spatial_pool alone"
                )
            warnings.warn(
                f"DBConformer: channel_attention={channel_attention} is deprecated; use spatial_pool={want!r}"
                " instead",
                DeprecationWarning,
                stacklevel=2,
            )
            spatial_pool = want
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.ch_names = ch_names
        self.patch_size = patch_size
        self.branch_dropout = float(branch_dropout)
        self.n_patches = n_times // patch_size
        d = emb_size

        # temporal branch
        self.temporal_stem = nn.Sequential(
            nn.Conv1d(n_chans, d, 1, bias=False),
            nn.BatchNorm1d(d),
            nn.Conv1d(d, d, temporal_kernel, padding=temporal_kernel // 2, groups=d, bias=False),
            nn.BatchNorm1d(d),
            nn.GELU(),
            nn.AvgPool1d(patch_size, patch_size),
            nn.Dropout(dropout),
        )
        self.temporal_pos = nn.Parameter(torch.randn(1, self.n_patches, d))
        self.temporal_encoder = nn.Sequential(
            *[ConformerBlock(d, n_heads, ffn_expansion, dropout) for _ in range(depth_temporal)]
        )
        # spatial branch: one token per electrode
        self.spatial_embed = nn.Sequential(
            nn.Conv1d(1, spatial_filters, spatial_kernel, stride=spatial_stride, padding=spatial_kernel // 2),
            nn.ELU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(spatial_filters, d),
        )
        # drawn in any case, so that the RNG stream (and every later init) does not depend on the std
        spatial_pos = torch.randn(1, n_chans, d)
        if electrode_embedding_std != 1.0:
            spatial_pos = spatial_pos * electrode_embedding_std
        self.spatial_pos = nn.Parameter(spatial_pos)
        self.spatial_encoder = nn.Sequential(
            *[ConformerBlock(d, n_heads, ffn_expansion, dropout) for _ in range(depth_spatial)]
        )
        # built here, between the spatial encoder and the head, as before: the default's RNG stream is kept
        self.channel_pool = _build_spatial_pool(spatial_pool, n_chans, d, spatial_pool_kwargs)
        self.spatial_pool = ALIASES.get(spatial_pool.lower(), spatial_pool.lower())  # canonical name
        self.use_channel_attention = self.channel_pool is not None
        # ChannelAttentionPool: one softmax gives both alpha and the weighted sum (the paper's computation)
        self._pool_is_weighted_sum = isinstance(self.channel_pool, ChannelAttentionPool)
        self.head = nn.Sequential(
            nn.Linear(2 * d, 64),
            nn.ELU(),
            nn.Dropout(0.5),
            nn.Linear(64, 32),
            nn.ELU(),
            nn.Dropout(0.3),
            nn.Linear(32, n_outputs),
        )
        for m in self.temporal_stem.modules():
            if isinstance(m, nn.Conv1d | nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.n_chans or x.shape[2] != self.n_times:
            raise ValueError(
                f"DBConformer expects (batch, {self.n_chans}, {self.n_times}) trials, got {tuple(x.shape)}"
            )

    def _spatial_tokens(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        tokens = self.spatial_embed(x.reshape(b * c, 1, t)).reshape(b, c, -1)
        return self.spatial_encoder(tokens + self.spatial_pos)

    def _fused(self, x: torch.Tensor, need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[x_t; x_s]`` and, if ``need_weights`` or free, the pool's weights ``(B, C)``."""
        self._check(x)
        t = self.temporal_stem(x).transpose(1, 2) + self.temporal_pos
        x_t = self.temporal_encoder(t).mean(dim=1)
        h = self._spatial_tokens(x)
        pool = self.channel_pool
        alpha: torch.Tensor | None = None
        if pool is None:
            if need_weights:
                alpha = torch.full(h.shape[:2], 1.0 / h.shape[1], dtype=h.dtype, device=h.device)
            x_s = h.mean(dim=1)
        elif self._pool_is_weighted_sum:
            alpha = pool.attention(h)
            x_s = torch.einsum("bc,bcd->bd", alpha, h)
        else:
            if need_weights:
                alpha = pool.attention(h)
            x_s = pool(h)
        return torch.cat([x_t, x_s], dim=1), alpha

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused features ``(B, 2D)`` and the spatial pool's electrode weights ``(B, C)`` (``1/C``: mean)."""
        feats, alpha = self._fused(x, need_weights=True)
        assert alpha is not None
        return feats, alpha

    def drop_branches(self, feats: torch.Tensor) -> torch.Tensor:
        """Branch dropout on fused features ``(B, 2D)`` (training only; not in the paper).

        With probability ``branch_dropout`` per sample, one of the two branch vectors (temporal or spatial,
        50/50) is zeroed; the kept values are rescaled by ``1 / (1 - p / 2)`` so each branch's expected input
        to the head is unchanged. The identity in eval mode or when ``branch_dropout == 0``.
        """
        p = self.branch_dropout
        if not self.training or p <= 0.0:
            return feats
        b, d2 = feats.shape
        drop = torch.rand(b, device=feats.device) < p
        which = torch.rand(b, device=feats.device) < 0.5  # True: drop the spatial half
        keep_t = ~(drop & ~which)
        keep_s = ~(drop & which)
        mask = torch.cat(
            [keep_t[:, None].expand(b, d2 // 2), keep_s[:, None].expand(b, d2 - d2 // 2)], dim=1
        ).to(feats.dtype)
        return feats * mask / (1.0 - 0.5 * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_outputs)`` for trials ``x (B, C, T)``."""
        return self.head(self.drop_branches(self._fused(x, need_weights=False)[0]))

    def spatial_attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Self-attention maps ``(B, heads, C, C)`` of each spatial block, first block first.

        Runs the spatial branch block by block (same computation as ``forward``); call under ``model.eval()``.
        """
        self._check(x)
        b, c, t = x.shape
        h = self.spatial_embed(x.reshape(b * c, 1, t)).reshape(b, c, -1) + self.spatial_pos
        maps = []
        for blk in self.spatial_encoder:
            maps.append(blk.attn.attention_map(blk.norm1(h)))
            h = blk(h)
        return maps

    def attention_rollout(self, x: torch.Tensor) -> torch.Tensor:
        """Attention rollout ``(B, C, C)`` of the spatial transformer (Abnar & Zuidema, ACL 2020).

        Per block: ``A = mean_heads(att)``, ``A' = (A + I) / 2`` (the residual connection; rows still sum to
        1), and ``R = A'_L ... A'_1``. ``R[b, c, j]`` is the share of input electrode ``j`` (its signal token
        plus its electrode embedding) in output token ``c``; each row sums to 1. Feed-forward layers mix
        nothing across tokens and are ignored, as in the original method.
        """
        maps = self.spatial_attention_maps(x)
        c = x.shape[1]
        eye = torch.eye(c, dtype=x.dtype, device=x.device)
        r = eye.expand(x.shape[0], c, c)
        for att in maps:
            a = 0.5 * (att.mean(dim=1) + eye)
            r = a @ r
        return r

    def channel_weights(self, x: torch.Tensor, method: str = "rollout") -> torch.Tensor:
        """Per-trial electrode importances ``(B, C)`` (each row sums to 1).

        ``method="rollout"`` (default): the pool's weights over the output tokens carried back to the input
        electrodes through the spatial transformer's attention rollout, ``w_j = sum_c alpha_c R[c, j]`` (see
        :meth:`attention_rollout`). The spatial blocks mix electrode tokens before the pool, so a pooled token
        ``c`` is not electrode ``c`` alone; the rollout says which electrodes the pooled vector is made of.
        ``method="pool"``: the raw weights ``alpha`` of the spatial pool over the transformed tokens (what
        ``forward_features`` returns): :class:`~sigattn.layers.ChannelAttentionPool`'s softmax by default,
        ``1/C`` each with ``spatial_pool="mean"``. Neither changes ``forward``.

        Call under ``model.eval()`` for deterministic weights (dropout acts on the tokens otherwise).
        """
        alpha = self.forward_features(x)[1]
        if method == "pool":
            return alpha
        if method == "rollout":
            return torch.einsum("bc,bcj->bj", alpha, self.attention_rollout(x))
        raise ValueError(f"unknown channel_weights method {method!r}; valid: rollout, pool")
