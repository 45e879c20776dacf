"""Masked statistics over the time axis and input validation shared by every layer.

Shapes follow the house convention: ``x`` is ``(B, C, T)`` (or ``(B, C, H, W)``, where the last two axes are
pooled together and masking is not defined), ``lengths`` is an optional ``LongTensor (B,)`` of valid time
steps. Every statistic here ignores padded steps exactly, so a padded item gives what it gives alone.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

# NaN/Inf checking of layer inputs forces a device sync, so it is off unless asked for
# (``set_finite_check(True)`` or the environment variable ``SIGATTN_CHECK_FINITE=1``).
_FINITE_CHECK = [os.environ.get("SIGATTN_CHECK_FINITE", "0") not in ("", "0", "false", "False")]


def set_finite_check(enabled: bool) -> bool:
    """Turn the NaN/Inf check of every layer's input on or off; returns the previous setting.

    Example:
        >>> previous = set_finite_check(True)  # layers now raise ValueError on NaN input
        >>> _ = set_finite_check(previous)
    """
    previous = _FINITE_CHECK[0]
    _FINITE_CHECK[0] = bool(enabled)
    return previous


def finite_check_enabled() -> bool:
    """Whether layers check their inputs for NaN/Inf (see :func:`set_finite_check`)."""
    return _FINITE_CHECK[0]


__all__ = [
    "check_finite_values",
    "check_input",
    "finite_check_enabled",
    "set_finite_check",
    "lengths_to_mask",
    "masked_max",
    "masked_mean",
    "masked_mean_std",
    "masked_softmax",
    "scale_channels",
]


def lengths_to_mask(lengths: Tensor | None, max_len: int, like: Tensor) -> Tensor | None:
    """Boolean mask ``(B, 1, T)``, True on valid steps; ``None`` when ``lengths`` is ``None``."""
    if lengths is None:
        return None
    steps = torch.arange(max_len, device=like.device)
    return (steps[None, :] < lengths.to(like.device)[:, None]).unsqueeze(1)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the last axis of ``(B, C, T)`` with a ``(B, 1, T)`` mask -> ``(B, C, 1)``."""
    if mask is None:
        return x.mean(dim=-1, keepdim=True)
    # masked_fill, not x * mask: padding may hold anything (inf, NaN) and must not leak into the result.
    count = mask.sum(dim=-1, keepdim=True).clamp_min(1).to(x.dtype)
    return x.masked_fill(~mask, 0.0).sum(dim=-1, keepdim=True) / count


def masked_mean_std(x: Tensor, mask: Tensor | None, eps: float = 1e-12) -> tuple[Tensor, Tensor]:
    """Mean and (biased) standard deviation over the last axis, masked -> two ``(B, C, 1)``.

    ``std = sqrt(clamp(E[(x - mean)^2], eps))``, the form ECAPA-TDNN uses; the centred second moment is
    computed in two passes for accuracy.
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean).pow(2), mask)
    return mean, var.clamp_min(eps).sqrt()


def masked_max(x: Tensor, mask: Tensor | None) -> Tensor:
    """Max over the last axis, padded steps excluded -> ``(B, C, 1)``."""
    if mask is None:
        return x.amax(dim=-1, keepdim=True)
    # -inf (not finfo.min, which TorchScript lacks) is safe: lengths >= 1 leaves a valid step per row.
    return x.masked_fill(~mask, float("-inf")).amax(dim=-1, keepdim=True)


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax along ``dim`` with padded positions given exactly zero weight."""
    if mask is None:
        return torch.softmax(scores, dim=dim)
    # exp(-inf) = 0 exactly, in every dtype; rows need at least one valid position.
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=dim)


def check_input(
    x: Tensor,
    channels: int | None,
    lengths: Tensor | None = None,
    *,
    ranks: tuple[int, ...] = (3,),
    check_finite: bool | None = None,
    name: str = "layer",
) -> None:
    """Raise a ``ValueError`` that names the problem when ``x``/``lengths`` do not fit the layer.

    Checks rank, channel count (axis 1), ``lengths`` shape, dtype and range, and optionally finiteness
    (``check_finite=None`` follows :func:`set_finite_check`, off by default for speed: it forces a device
    sync). Skipped under TorchScript/compile tracing.
    """
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{name}: expected a {want} input (B, C, T...), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{name}: built for {channels} channels, got {x.shape[1]} in input of shape {tuple(x.shape)}"
        )
    if lengths is not None:
        if x.dim() != 3:
            raise ValueError(
                f"{name}: lengths is only defined for (B, C, T) input, got shape {tuple(x.shape)}"
            )
        if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.shape[0] != x.shape[0]:
            shape = tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths).__name__
            raise ValueError(f"{name}: lengths must be a 1-D tensor of size B={x.shape[0]}, got {shape}")
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"{name}: lengths must be an integer tensor of valid steps, got {lengths.dtype}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > x.shape[-1]:
            raise ValueError(f"{name}: lengths must lie in [1, T={x.shape[-1]}], got values in [{lo}, {hi}]")
    if check_finite is None:
        check_finite = _FINITE_CHECK[0]
    if check_finite:
        mask = lengths_to_mask(lengths, x.shape[-1], x) if x.dim() == 3 else None
        check_finite_values(x, name, mask)


def check_finite_values(x: Tensor, name: str, mask: Tensor | None = None) -> None:
    """Raise ``ValueError`` naming the first NaN/Inf of ``x`` (padding excluded when ``mask`` is given)."""
    bad = ~torch.isfinite(x)
    if mask is not None:
        bad = bad & mask
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}: input has NaN/Inf, first at index {idx} of shape {tuple(x.shape)}")


def scale_channels(x: Tensor, gate: Tensor) -> Tensor:
    """``x * gate`` with a ``(B, C)`` gate broadcast over every trailing axis of ``(B, C, ...)``."""
    for _ in range(x.dim() - 2):
        gate = gate.unsqueeze(-1)
    return x * gate
