"""The two steps every report figure shares: matplotlib's pyplot on the file-only Agg backend, and saving a
figure as PNG (folder created, figure closed). matplotlib is the ``plots`` extra: imported here on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pyplot", "save_png"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (report figures are files; no display is needed); ImportError
    without the ``plots`` extra."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 100, tight: str = "layout") -> Path:
    """Save ``fig`` to ``path`` (its folder created) and close it; ``tight``: ``"layout"`` (``tight_layout``
    first), ``"bbox"`` (``bbox_inches="tight"``) or ``"none"``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight == "layout":
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, **({"bbox_inches": "tight"} if tight == "bbox" else {}))
    plt.close(fig)
    return path
