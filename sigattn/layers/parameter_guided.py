"""Parameter-guided channel attention: channel gates computed from side parameters (CAPE-style).

Reference: M. Takamoto, F. Alesiani, M. Niepert, "Learning Neural PDE Solvers with Parameter-Guided Channel
Attention" (CAPE), ICML 2023. CAPE embeds the PDE coefficients and turns the embedding
into channel attention on the solver's features; here the same idea serves any side information that
should steer which channels matter: PDE coefficients, a subject or session id (EEG), a speaker's
recording condition, or exogenous covariates (forecasting). This is a generic layer in that spirit, not a
reimplementation of the CAPE network.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._masking import check_input

__all__ = ["ParameterGuidedChannelAttention"]


class ParameterGuidedChannelAttention(nn.Module):
    """``g = sigmoid(W2 act(W1 e(p) + b1) + b2)``, ``y = x * g``: a per-item channel gate from parameters.

    ``e(p)`` is ``p`` itself for continuous parameters ``(B, P)`` (``param_dim=P``), or a learned embedding
    ``E[p]`` for integer ids ``(B,)`` (``num_embeddings=N``, embedding size ``embed_dim``). The gate does not
    look at ``x``, so masking is trivially exact; ``lengths`` is accepted (and validated) for a uniform API.
    With ``zero_init`` (default), ``W2, b2`` start at zero, so the initial gate is ``scale * 0.5`` whatever
    ``p`` is (``scale=2``, the default, makes the layer start as the identity, safe to insert into a trained
    network); ``W1`` then receives gradient from the second step on.

    Shapes: ``x`` ``(B, C, T)`` or ``(B, C, H, W)``; ``params`` ``(B, P)`` float or ``(B,)`` integer ids.
    ``forward`` returns the shape of ``x``; ``attention`` the gate ``(B, C)`` (values in (0, scale)).

    Args:
        channels: channel count ``C``.
        param_dim: number of continuous parameters ``P`` (exclusive with ``num_embeddings``).
        num_embeddings: number of distinct ids (e.g. subjects) for integer parameters.
        embed_dim: embedding size for ids (default 16).
        hidden_dim: width of ``W1`` (default 64).
        scale: gate multiplier; 2 makes the zero-initialised gate an identity at start, 1 is a plain sigmoid.
        zero_init: initialise ``W2, b2`` to zero (identity at start); False keeps PyTorch's default init.

    Parameter count: ``Din*H + H + H*C + C`` (+ ``N*embed_dim`` for ids), ``Din = P`` or ``embed_dim``.

    Example:
        >>> pg = ParameterGuidedChannelAttention(64, param_dim=3)
        >>> pg(torch.randn(2, 64, 100), torch.randn(2, 3)).shape
        torch.Size([2, 64, 100])
        >>> subj = ParameterGuidedChannelAttention(22, num_embeddings=9)
        >>> subj.attention(torch.randn(4, 22, 250), torch.tensor([0, 3, 3, 8])).shape
        torch.Size([4, 22])
    """

    def __init__(
        self,
        channels: int,
        param_dim: int | None = None,
        num_embeddings: int | None = None,
        embed_dim: int = 16,
        hidden_dim: int = 64,
        scale: float = 2.0,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        name = "ParameterGuidedChannelAttention"
        if (param_dim is None) == (num_embeddings is None):
            raise ValueError(
                f"{name}: give exactly one of param_dim (float parameters) or num_embeddings (ids)"
            )
        for what, v in (("channels", channels), ("embed_dim", embed_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        for what, v in (("param_dim", param_dim), ("num_embeddings", num_embeddings)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        self.channels = channels
        self.param_dim = param_dim
        self.num_embeddings = num_embeddings
        self.scale = float(scale)
        if num_embeddings is not None:
            self.embed: nn.Module = nn.Embedding(num_embeddings, embed_dim)
            din = embed_dim
        else:
            self.embed = nn.Identity()
            din = int(param_dim)  # type: ignore[arg-type]
        self.fc1 = nn.Linear(din, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, channels)
        if zero_init:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def _check_params(self, x: Tensor, params: Tensor) -> None:
        name = "ParameterGuidedChannelAttention"
        if not isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be a torch.Tensor, got {type(params).__name__}")
        b = x.shape[0]
        if self.num_embeddings is not None:
            if params.dim() != 1 or params.shape[0] != b or params.dtype.is_floating_point:
                raise ValueError(
                    f"{name}: expected integer ids of shape (B={b},), got {params.dtype} {tuple(params.shape)}"
                )
            lo, hi = int(params.min()), int(params.max())
            if lo < 0 or hi >= self.num_embeddings:
                raise ValueError(f"{name}: ids must lie in [0, {self.num_embeddings - 1}], got [{lo}, {hi}]")
        elif params.dim() != 2 or params.shape != (b, self.param_dim):
            raise ValueError(
                f"{name}: expected parameters of shape (B={b}, P={self.param_dim}), got {tuple(params.shape)}"
            )

    @torch.jit.export
    def attention(self, x: Tensor, params: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The gate ``(B, C)`` computed from ``params`` alone."""
        if not torch.jit.is_scripting():
            check_input(x, self.channels, lengths, ranks=(3, 4), name="ParameterGuidedChannelAttention")
            if not torch.compiler.is_compiling():
                self._check_params(x, params)
        e = self.embed(params)
        if e.dtype != x.dtype:
            e = e.to(x.dtype)
        return self.scale * torch.sigmoid(self.fc2(self.act(self.fc1(e))))

    def forward(self, x: Tensor, params: Tensor, lengths: Tensor | None = None) -> Tensor:
        g = self.attention(x, params, lengths)
        for _ in range(x.dim() - 2):
            g = g.unsqueeze(-1)
        return x * g

    def extra_repr(self) -> str:
        src = f"param_dim={self.param_dim}" if self.num_embeddings is None else f"ids={self.num_embeddings}"
        return f"channels={self.channels}, {src}, scale={self.scale}"
