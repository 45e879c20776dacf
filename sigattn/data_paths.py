"""Where real data live: ``$SIGATTN_DATA_DIR`` or ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """The shared real-data folder, or ``None`` when it is absent (tests needing it then skip with a reason)."""
    env = os.environ.get("SIGATTN_DATA_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parents[1]
    candidates += [here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def resolve_data_path(path: str | os.PathLike) -> Path:
    """Resolve a recipe path: absolute, relative to the cwd, or ``data:<rel>`` under the shared data folder."""
    s = str(path)
    if s.startswith("data:"):
        root = shared_data_dir()
        if root is None:
            raise FileNotFoundError(
                f"{s!r} refers to the shared data folder, but neither $SIGATTN_DATA_DIR nor ../shared/data exists"
            )
        return root / s[len("data:") :].lstrip("/")
    return Path(s).expanduser()
