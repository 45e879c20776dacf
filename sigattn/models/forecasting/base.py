"""Shared pieces of the forecasting models: RevIN, channel strategies and the forecaster base class.

RevIN: T. Kim, J. Kim, Y. Tae, C. Park, J.-H. Choi, J. Choo, "Reversible Instance Normalization for Accurate
Time-Series Forecasting against Distribution Shift", ICLR 2022.

Every model maps a lookback window ``x`` ``(B, C, L)`` to a forecast ``(B, C, H)`` and takes
``channel_strategy``:

* ``"ci"`` - channel-independent: one set of weights shared by all channels, each channel forecast alone
  (``model(x)[:, c] == model(x[:, c:c+1])[:, 0]``); any channel count.
* ``"cd"`` - channel-dependent: the model mixes information across channels (needs ``n_channels``).
* ``"ccm"`` - channel clustering (:class:`sigattn.layers.clustering.ChannelClustering`): the model's
  per-channel heads become ``K`` cluster heads mixed by each channel's assignment; any channel count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sigattn.layers.clustering import ChannelClustering, ClusterAwareLinear, ClusterOutput

__all__ = ["STRATEGIES", "ChannelMixing", "Forecaster", "RevIN", "StrategyLinear"]

STRATEGIES = ("ci", "cd", "ccm")


class RevIN(nn.Module):
    """Reversible instance normalisation over the time axis of ``(B, C, L)``.

    ``normalize`` returns ``(x - mean) / std * w + b`` and the statistics; ``denormalize`` inverts it on the
    forecast. The affine parameters are scalars shared by all channels, so the model keeps any channel count.

    Example:
        >>> rev = RevIN()
        >>> x = torch.randn(2, 3, 10) * 5 + 1
        >>> z, stats = rev.normalize(x)
        >>> bool(torch.allclose(rev.denormalize(z, stats), x, atol=1e-4))
        True
    """

    def __init__(self, affine: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(1))
            self.bias = nn.Parameter(torch.zeros(1))

    def normalize(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        mean = x.mean(dim=-1, keepdim=True).detach()
        std = (x.var(dim=-1, keepdim=True, unbiased=False) + self.eps).sqrt().detach()
        z = (x - mean) / std
        if self.affine:
            z = z * self.weight + self.bias
        return z, (mean, std)

    def denormalize(self, y: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
        mean, std = stats
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class ChannelMixing(nn.Module):
    """Residual linear mixing across channels, ``x + W x`` over the channel axis (zero-initialised).

    The ``"cd"`` strategy of models that are channel-independent by design (DLinear, PatchTST): the mixing
    starts as the identity so a CD model starts where its CI twin does.
    """

    def __init__(self, n_channels: int) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.mix = nn.Linear(n_channels, n_channels)
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.n_channels:
            raise ValueError(
                f"channel_strategy='cd' was built for {self.n_channels} channels, got shape {tuple(x.shape)}; "
                "use 'ci' or 'ccm' for a different channel count"
            )
        return x + self.mix(x.transpose(1, -1)).transpose(1, -1)


class StrategyLinear(nn.Module):
    """A per-channel linear layer: shared (``ci``/``cd``) or cluster-aware (``ccm``, needs ``prob``)."""

    def __init__(self, in_features: int, out_features: int, strategy: str, n_clusters: int) -> None:
        super().__init__()
        self.strategy = strategy
        if strategy == "ccm":
            self.layer = ClusterAwareLinear(in_features, out_features, n_clusters)
        else:
            self.layer = nn.Linear(in_features, out_features)

    def forward(self, z: Tensor, prob: Tensor | None = None) -> Tensor:
        """``z`` ``(B, C, in)`` -> ``(B, C, out)``."""
        if self.strategy == "ccm":
            if prob is None:
                raise ValueError("a cluster-aware layer needs the assignment probabilities `prob`")
            return self.layer(z, prob)
        return self.layer(z)


class Forecaster(nn.Module):
    """Base class: validation, RevIN, the CCM assigner and the ``forward`` contract.

    Subclasses implement ``_forecast(z, prob) -> (B, C, H)`` on the (optionally RevIN-normalised) window.
    ``forward(x, return_aux=False)`` returns the forecast, or ``(forecast, aux)`` where ``aux`` holds the
    cluster output (``"clusters"``, a :class:`ClusterOutput`) and ``"cluster_loss"`` under ``ccm``.

    CCM options (recipe keys ``model.ccm_*``): ``ccm_d_model`` and ``ccm_temperature`` of the assigner, and the
    two departures from the paper documented in :mod:`sigattn.layers.clustering`, switchable for ablations:
    ``ccm_refine`` (heads mixed with the cross-attention-refined prototypes, the paper's form) and
    ``ccm_assign_grad`` (the forecasting loss also trains the channel embedding and prototypes).
    """

    cd_needs_n_channels = True  # False where "cd" works on any channel count (attention over channel tokens)

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        channel_strategy: str = "ci",
        n_channels: int | None = None,
        n_clusters: int = 3,
        revin: bool = True,
        revin_affine: bool = False,
        ccm_d_model: int = 64,
        ccm_temperature: float = 0.1,
        ccm_refine: bool = False,
        ccm_assign_grad: bool = False,
    ) -> None:
        super().__init__()
        if channel_strategy not in STRATEGIES:
            raise ValueError(f"channel_strategy must be one of {STRATEGIES}, got {channel_strategy!r}")
        if seq_len < 1 or pred_len < 1:
            raise ValueError(f"seq_len and pred_len must be >= 1, got {seq_len} and {pred_len}")
        if channel_strategy == "cd" and not n_channels and self.cd_needs_n_channels:
            raise ValueError("channel_strategy='cd' needs n_channels (the number of input channels)")
        self.seq_len, self.pred_len = seq_len, pred_len
        self.channel_strategy, self.n_channels, self.n_clusters = channel_strategy, n_channels, n_clusters
        self.revin = RevIN(revin_affine) if revin else None
        self.clustering = (
            ChannelClustering(
                seq_len,
                n_clusters,
                d_model=ccm_d_model,
                temperature=ccm_temperature,
                refine=ccm_refine,
                assign_grad=ccm_assign_grad,
            )  # fmt: skip
            if channel_strategy == "ccm"
            else None
        )

    def _forecast(self, z: Tensor, prob: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, return_aux: bool = False):
        """Forecast ``(B, C, H)`` from the lookback window ``x`` ``(B, C, L)``."""
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.seq_len:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected a lookback window (B, C, L={self.seq_len}), got {shape}")
        stats = None
        z = x
        if self.revin is not None:
            z, stats = self.revin.normalize(x)
        clusters: ClusterOutput | None = None
        prob = None
        if self.clustering is not None:
            clusters = self.clustering(x)
            prob = clusters.prob
        y = self._forecast(z, prob)
        if stats is not None:
            y = self.revin.denormalize(y, stats)
        if not return_aux:
            return y
        aux: dict = {}
        if clusters is not None:
            aux["clusters"] = clusters
            aux["cluster_loss"] = self.clustering.loss(x, clusters)
        return y, aux

    @torch.no_grad()
    def assignments(self, x: Tensor) -> Tensor:
        """Cluster assignment probabilities ``(B, C, K)`` (``ccm`` only)."""
        if self.clustering is None:
            raise ValueError(
                f"assignments need channel_strategy='ccm', this model is {self.channel_strategy!r}"
            )
        return self.clustering(x).prob
