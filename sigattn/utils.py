"""Small helpers shared across the package (unwrapping models, mean +- std over runs); this module imports torch
only (any layer may use it).

Example:
    >>> from torch import nn
    >>> net = nn.Linear(2, 2)
    >>> unwrap(nn.parallel.DataParallel(net)) is net
    True
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

__all__ = ["summarize", "unwrap"]


def _wrapped(model: Any) -> Any:
    """What ``model`` wraps (``None`` when it wraps nothing): ``torch.compile``'s ``_orig_mod``, or the
    ``module`` of DDP / DataParallel and of DDP-like wrappers (an object whose only submodule is ``module``).
    A model of the user's own with a ``module`` attribute beside other submodules is not a wrapper."""
    inner = getattr(model, "_orig_mod", None)
    if isinstance(inner, nn.Module):
        return inner
    inner = getattr(model, "module", None)
    if not isinstance(inner, nn.Module):
        return None
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return inner
    children = getattr(model, "_modules", None)
    return inner if children is None or list(children) == ["module"] else None


def summarize(results: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, std)}`` over runs (folds, seeds; population std, ``ddof=0``), for the metrics every run
    has, in the first run's order."""
    if not results:
        raise ValueError("summarize: no results")
    keys = [k for k in results[0] if all(k in r for r in results)]
    out = {}
    for k in keys:
        values = [float(r[k]) for r in results]
        mean = math.fsum(values) / len(values)
        out[k] = (mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)))
    return out


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DDP / DataParallel / ``torch.compile`` wrappers, in any nesting (compiled DDP,
    DDP of a compiled model): the module whose attributes a task reads (``model.head``, ``.embedding``)."""
    while (inner := _wrapped(model)) is not None:
        model = inner
    return model
