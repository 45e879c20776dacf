"""Atomic, verified checkpoints loaded with ``torch.load(weights_only=True)``.

A checkpoint file holds ``{"format": "sigattn-checkpoint", "version": 1, "digest": sha256, "state": {...}}``
where ``state`` contains only plain containers, numbers, strings and tensors. ``digest`` is a SHA-256 over a
canonical walk of ``state`` (keys, dtypes, shapes and the raw bytes of every tensor), so a file that still
unpickles but was altered is refused as firmly as a truncated one.

Writing: the file goes to ``<name>.tmp``, is flushed and fsync'ed, read back and verified, and only then
``os.replace``-d over its final name; old checkpoints are rotated away only after the new one is in place.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "a.ckpt"
    >>> _ = save_checkpoint({"w": torch.ones(2)}, p)
    >>> load_checkpoint(p)["w"].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sigattn.errors import UserError

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "list_checkpoints",
    "rotate_checkpoints",
    "digest",
    "check_state_fits",
]

FORMAT = "sigattn-checkpoint"
VERSION = 1
_STEP_RE = re.compile(r"^step-(\d+)\.ckpt$")


class CheckpointError(UserError):
    """A checkpoint file that is missing, truncated, tampered with or not a sigattn checkpoint."""


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(f"S{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(
            f"checkpoint state may hold only dicts, lists, tuples, numbers, strings and tensors; "
            f"got {type(obj).__name__}"
        )


def digest(state: Any) -> str:
    """SHA-256 hex digest of a checkpoint state (canonical, independent of dict order)."""
    h = hashlib.sha256()
    _feed(h, state)
    return h.hexdigest()


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {str(path)!r}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, disallowed global...
        # torch's messages may span many lines (weights_only explanations): their first sentence
        first = (str(e).strip().splitlines() or [""])[0]
        first = first.split(". ")[0][:200]
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read (truncated or corrupted?): {type(e).__name__}: {first}"
        ) from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or "state" not in blob:
        raise CheckpointError(f"{str(path)!r} is not a sigattn checkpoint (no {FORMAT!r} header)")
    if blob.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has version {blob.get('version')!r}; this sigattn reads {VERSION}"
        )
    try:
        actual = digest(blob["state"])
    except TypeError as e:
        raise CheckpointError(f"checkpoint {str(path)!r}: {e}") from e
    if actual != blob.get("digest"):
        raise CheckpointError(
            f"checkpoint {str(path)!r} failed its integrity check (stored digest {str(blob.get('digest'))[:12]}..., "
            f"content hashes to {actual[:12]}...): the file was modified or damaged after it was written"
        )
    return blob["state"]


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and verify a checkpoint; returns its ``state`` dict.

    Raises:
        CheckpointError: naming the file when it is missing, truncated, tampered with or foreign.
    """
    return _read(Path(path))


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` atomically to ``path`` and verify it; an existing good file is replaced only then.

    Raises:
        TypeError: when ``state`` holds something other than plain containers, numbers, strings and tensors.
        CheckpointError: when the written file does not read back identically (the old file is kept).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    d = digest(state)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, "digest": d, "state": state}, f)
            f.flush()
            os.fsync(f.fileno())
        _read(tmp)  # verify before it can replace anything
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def check_state_fits(module: torch.nn.Module, weights: Mapping, path: str | os.PathLike, hint: str) -> None:
    """Raise a one-line :class:`CheckpointError` when ``weights`` (a state dict read from ``path``) do not fit
    ``module``: the first parameter whose shape differs, with both shapes, else the missing/unexpected names;
    ``hint`` says why (e.g. which recipe settings differ)."""
    own = module.state_dict()
    where = f"checkpoint {str(path)!r} does not fit the model"
    for name, t in weights.items():
        if name in own and isinstance(t, torch.Tensor) and tuple(t.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"{where}: parameter {name!r} is {tuple(t.shape)} in the checkpoint but {tuple(own[name].shape)} "
                f"in the model; {hint}"
            )
    missing = [n for n in own if n not in weights]
    unexpected = [n for n in weights if n not in own]
    if missing or unexpected:
        parts = [f"{len(missing)} missing (first {missing[0]!r})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (first {unexpected[0]!r})"] if unexpected else []
        raise CheckpointError(f"{where}: parameters {' and '.join(parts)}; {hint}")


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """``step-*.ckpt`` files of ``folder``, oldest (lowest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def rotate_checkpoints(folder: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` step checkpoints; returns what was removed."""
    ckpts = list_checkpoints(folder)
    doomed = ckpts[: max(len(ckpts) - max(keep_last, 1), 0)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def step_path(folder: str | os.PathLike, step: int) -> Path:
    """The file name of the checkpoint written after optimiser step ``step``."""
    return Path(folder) / f"step-{step:09d}.ckpt"
