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


def create_forecaster(name: str, seq_len: int, pred_len: int, **kw) -> Forecaster:
    """Build a forecasting model by name: the ``forecast`` models of :mod:`sigattn.models.registry` (``dlinear``,
    ``itransformer``, ``patchtst``, ``tsmixer``, and any registered there).

    Example:
        >>> create_forecaster("dlinear", 96, 24, channel_strategy="ccm", n_clusters=2).channel_strategy
        'ccm'
    """
    from sigattn.models.registry import create_model, model_names

    if not isinstance(name, str) or name.lower() not in model_names("forecast"):
        valid = ", ".join(model_names("forecast"))
        raise ValueError(f"unknown forecasting model {name!r}; valid models: {valid}")
    return create_model("forecast", name, seq_len=seq_len, pred_len=pred_len, **kw)


__all__ = [
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
