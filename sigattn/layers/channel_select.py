"""Attention-based channel selection for microphone arrays and electrode montages.

References: S. Braun, D. Neil, J. Anumula, E. Ceolini, S.-C. Liu, "Multi-channel Attention for End-to-End
Speech Recognition", Interspeech 2018 (content-based attention scores per input channel, softmax over
channels, soft combination, independent of the number and order of channels); the soft top-k relaxation
for ``k > 1`` follows S. M. Xie, S. Ermon, "Reparameterizable Subset Sampling via Continuous
Relaxations", IJCAI 2019 (successive softmaxes, each down-weighting what was already taken).

Inputs are ``(B, M, T)`` (one signal per channel) or ``(B, M, F, T)`` (``F`` features per channel, e.g.
log-mel bands of each microphone). Scoring is shared across channels, so ``M`` may change from call to call
and a batch may mix arrays of different sizes (pad the channel axis, pass ``n_channels``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._masking import check_finite_values, finite_check_enabled, lengths_to_mask, masked_mean_std

__all__ = ["ChannelSelect"]


class ChannelSelect(nn.Module):
    """Score each channel from its content; soft weighting in training, hard top-k at inference.

    Per channel ``m``, the descriptor is the masked mean and std over time of each of its ``F`` features,
    ``d_m = [mean_t x_m; std_t x_m]`` (``2F``), the score ``s_m = w2^T tanh(W1 d_m + b1) + b2`` and the
    channel weights ``alpha = softmax_m(s / tau)``. Output slot ``j = 1..k`` is ``y_j = sum_m a_{j,m} x_m``:

    * training: ``a_1 = alpha``, ``a_{j+1} = softmax_m((s_j + log(1 - a_j)) / tau)`` with ``s_1 = s`` and
      ``s_{j+1} = s_j + log(1 - a_j)`` (soft top-k; ``k = 1`` is Braun et al.'s soft combination);
    * eval: ``a_j`` is one-hot on the ``j``-th highest score (hard selection; gathers the raw channels).

    Shapes: ``x`` ``(B, M, T)`` -> ``(B, k, T)``; ``(B, M, F, T)`` -> ``(B, k, F, T)``. ``lengths`` ``(B,)``
    counts valid time steps, ``n_channels`` ``(B,)`` valid channels (padded channels are never selected).
    ``attention`` returns ``alpha`` ``(B, M)``; ``selection_weights`` returns ``a`` ``(B, k, M)``.

    Args:
        channels: features per channel ``F`` (1 for ``(B, M, T)`` input); the number of channels ``M`` is free.
        k: number of channels to select (output slots).
        hidden_dim: width of ``W1``.
        temperature: ``tau`` of the softmax.

    Parameter count: ``2F*H + H + H + 1``.

    Example:
        >>> sel = ChannelSelect(40, k=2)  # 40 log-mel bands per microphone
        >>> sel(torch.randn(3, 6, 40, 100)).shape, sel.eval()(torch.randn(3, 4, 40, 100)).shape
        (torch.Size([3, 2, 40, 100]), torch.Size([3, 2, 40, 100]))
    """

    def __init__(self, channels: int = 1, k: int = 1, hidden_dim: int = 32, temperature: float = 1.0) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("k", k), ("hidden_dim", hidden_dim)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"ChannelSelect: {name} must be a positive int, got {v!r}")
        if not temperature > 0:
            raise ValueError(f"ChannelSelect: temperature must be > 0, got {temperature!r}")
        self.channels = channels
        self.k = k
        self.temperature = float(temperature)
        self.proj = nn.Linear(2 * channels, hidden_dim)
        self.tanh = nn.Tanh()
        self.score = nn.Linear(hidden_dim, 1)

    def _check(self, x: Tensor, lengths: Tensor | None, n_channels: Tensor | None) -> None:
        name = "ChannelSelect"
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        want = "(B, M, T)" if self.channels == 1 else f"(B, M, F={self.channels}, T)"
        if self.channels == 1 and x.dim() == 4 and x.shape[2] == 1:
            pass
        elif (self.channels == 1 and x.dim() != 3) or (self.channels > 1 and x.dim() != 4):
            raise ValueError(f"{name}: expected input {want}, got shape {tuple(x.shape)}")
        if x.dim() == 4 and x.shape[2] != self.channels:
            raise ValueError(
                f"{name}: built for F={self.channels} features per channel, got shape {tuple(x.shape)}"
            )
        for what, v, hi in (("lengths", lengths, x.shape[-1]), ("n_channels", n_channels, x.shape[1])):
            if v is None:
                continue
            if not isinstance(v, Tensor) or v.dim() != 1 or v.shape[0] != x.shape[0]:
                got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"{name}: {what} must be a 1-D tensor of size B={x.shape[0]}, got {got}")
            if v.dtype.is_floating_point or v.dtype == torch.bool:
                raise ValueError(f"{name}: {what} must be an integer tensor, got {v.dtype}")
            lo, top = int(v.min()), int(v.max())
            if lo < 1 or top > hi:
                raise ValueError(f"{name}: {what} must lie in [1, {hi}], got values in [{lo}, {top}]")
        n_min = x.shape[1] if n_channels is None else int(n_channels.min())
        if n_min < self.k:
            raise ValueError(
                f"{name}: cannot select k={self.k} of {n_min} channels (input shape {tuple(x.shape)})"
            )
        if finite_check_enabled():
            check_finite_values(x, name)

    def _scores(self, x: Tensor, lengths: Tensor | None, n_channels: Tensor | None) -> Tensor:
        b, m = x.shape[0], x.shape[1]
        x4 = x.reshape(b, m, -1, x.shape[-1])  # (B, M, F, T)
        flat = x4.reshape(b, -1, x.shape[-1])  # (B, M*F, T)
        mask = lengths_to_mask(lengths, flat.shape[-1], flat)
        mean, std = masked_mean_std(flat, mask, 1e-12)
        desc = torch.cat([mean.reshape(b, m, -1), std.reshape(b, m, -1)], dim=-1)  # (B, M, 2F)
        s = self.score(self.tanh(self.proj(desc))).squeeze(-1)  # (B, M)
        if n_channels is not None:
            valid = torch.arange(m, device=x.device)[None, :] < n_channels.to(x.device)[:, None]
            s = s.masked_fill(~valid, float("-inf"))
        return s

    def _soft_topk(self, s: Tensor) -> Tensor:
        slots = []
        for _ in range(self.k):
            a = torch.softmax(s / self.temperature, dim=-1)
            slots.append(a)
            s = s + torch.log((1.0 - a).clamp_min(1e-12))  # what slot j took is down-weighted for j + 1
        return torch.stack(slots, dim=1)

    @torch.jit.export
    def attention(self, x: Tensor, lengths: Tensor | None = None, n_channels: Tensor | None = None) -> Tensor:
        """Channel weights ``alpha = softmax(s / tau)`` ``(B, M)``, summing to 1 over valid channels."""
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(x, lengths, n_channels)
        return torch.softmax(self._scores(x, lengths, n_channels) / self.temperature, dim=-1)

    @torch.jit.export
    def selection_weights(
        self, x: Tensor, lengths: Tensor | None = None, n_channels: Tensor | None = None
    ) -> Tensor:
        """Per-slot weights ``a`` ``(B, k, M)``: soft top-k in training, one-hot top-k in eval."""
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(x, lengths, n_channels)
        s = self._scores(x, lengths, n_channels)
        if not self.training:
            idx = s.topk(self.k, dim=-1).indices  # (B, k), sorted by score
            return torch.zeros_like(s).unsqueeze(1).repeat(1, self.k, 1).scatter_(2, idx.unsqueeze(-1), 1.0)
        return self._soft_topk(s)

    def forward(self, x: Tensor, lengths: Tensor | None = None, n_channels: Tensor | None = None) -> Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self._check(x, lengths, n_channels)
        b, m, t = x.shape[0], x.shape[1], x.shape[-1]
        s = self._scores(x, lengths, n_channels)
        flat = x.reshape(b, m, -1)  # (B, M, F*T)
        if not self.training:
            idx = s.topk(self.k, dim=-1).indices  # hard selection: gather, no mixing
            out = flat.gather(1, idx.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))
        else:
            weights = self._soft_topk(s)  # (B, k, M)
            if n_channels is not None:  # padded channels may hold anything; their weight is exactly 0
                valid = (
                    torch.arange(m, device=x.device)[None, :, None] < n_channels.to(x.device)[:, None, None]
                )
                flat = flat.masked_fill(~valid, 0.0)
            out = torch.bmm(weights, flat)
        if x.dim() == 4:
            return out.reshape(b, self.k, x.shape[2], t)
        return out.reshape(b, self.k, t)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, k={self.k}, temperature={self.temperature}"
