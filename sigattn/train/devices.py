"""Device choice, batch placement, model unwrapping and locating the checkpoint to resume from.

``unwrap`` lives in :mod:`sigattn.utils` (tasks use it too) and is re-exported here.

Example:
    >>> import torch
    >>> to_device({"x": torch.zeros(1), "n": 3}, torch.device("cpu"))["n"]
    3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sigattn.train import checkpoint as ck
from sigattn.train.config import ConfigError
from sigattn.utils import unwrap

__all__ = ["select_device", "to_device", "unwrap", "find_resume_checkpoint"]


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (this rank's GPU), else Apple MPS, else CPU; or an explicit ``cpu``/``cuda[:i]``/``mps``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r} but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside (nested dicts, lists, tuples) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        out = [to_device(v, device) for v in batch]
        return type(batch)(*out) if hasattr(batch, "_fields") else type(batch)(out)
    return batch


def find_resume_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the newest ``step-*.ckpt`` of a run folder (or of its ``checkpoints/``)."""
    p = Path(path)
    if p.is_file():
        return p
    for folder in (p / "checkpoints", p):
        found = ck.list_checkpoints(folder)
        if found:
            return found[-1]
    raise ck.CheckpointError(
        f"no checkpoint to resume from at {str(p)!r} (expected a .ckpt file or a run folder)"
    )
