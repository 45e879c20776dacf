"""Forecasting models with a ``channel_strategy`` switch: ``"ci"``, ``"cd"`` or ``"ccm"``.

All map a lookback window ``(B, C, L)`` to a forecast ``(B, C, H)``; see
:mod:`sigattn.models.forecasting.base`.
"""

from __future__ import annotations

from sigattn.models.forecasting.base import STRATEGIES, ChannelMixing, Forecaster, RevIN
from sigattn.models.forecasting.dlinear import DLinear, moving_average
from sigattn.models.forecasting.itransformer import ITransformer
from sigattn.models.forecasting.patchtst import PatchTST
from sigattn.models.forecasting.tsmixer import TSMixer

MODELS: dict[str, type[Forecaster]] = {
    "dlinear": DLinear,
    "itransformer": ITransformer,
    "patchtst": PatchTST,
    "tsmixer": TSMixer,
}


def create_forecaster(name: str, seq_len: int, pred_len: int, **kw) -> Forecaster:
    """Build a forecasting model by name (``dlinear``, ``itransformer``, ``patchtst``, ``tsmixer``).

    Example:
        >>> create_forecaster("dlinear", 96, 24, channel_strategy="ccm", n_clusters=2).channel_strategy
        'ccm'
    """
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"unknown forecasting model {name!r}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[key](seq_len, pred_len, **kw)


__all__ = [
    "MODELS",
    "STRATEGIES",
    "ChannelMixing",
    "DLinear",
    "Forecaster",
    "ITransformer",
    "PatchTST",
    "RevIN",
    "TSMixer",
    "create_forecaster",
    "moving_average",
]
