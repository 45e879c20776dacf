"""Run-report figures for EEG decoding: electrode-attention topomap (``mne.viz.plot_topomap``) and confusion
matrix. matplotlib and MNE are imported lazily (Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sigattn.plotting import pyplot, save_png


def topomap_png(
    weights: np.ndarray, ch_names: Sequence[str], path: str | Path, *, montage: str = "standard_1005",
    title: str = "electrode attention",
) -> Path:  # fmt: skip
    """Scalp map of per-electrode weights (e.g. the mean of ``DBConformer.channel_weights``), top-5 labelled."""
    import mne

    from sigattn.tasks.eeg.io import make_montage

    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(ch_names),):
        raise ValueError(f"topomap: {weights.shape[0]} weights for {len(ch_names)} channels")
    info = mne.create_info(list(ch_names), 100.0, "eeg")
    info.set_montage(make_montage(montage), on_missing="raise", verbose="error")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    top = set(np.argsort(-weights)[:5].tolist())
    names = [n if i in top else "" for i, n in enumerate(ch_names)]
    im, _ = mne.viz.plot_topomap(weights, info, axes=ax, show=False, names=names, cmap="viridis", contours=4)
    fig.colorbar(im, ax=ax, shrink=0.7, label="mean attention weight")
    ax.set_title(title)
    return save_png(fig, path, dpi=110, tight="bbox")


def confusion_png(
    cm: np.ndarray, class_names: Sequence[str], path: str | Path, *, title: str = "confusion"
) -> Path:
    """Confusion matrix (rows: true class, columns: predicted) with counts."""
    plt = pyplot()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.2 * len(class_names) + 1.5))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_png(fig, path, dpi=110, tight="bbox")
