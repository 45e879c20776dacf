"""Run-report plots of the forecasting task: forecasts vs truth, cluster assignments, channel similarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["write_plots"]


def _similarity(task, split: str, max_windows: int = 256) -> np.ndarray:
    from sigattn.layers.clustering import channel_similarity

    ds = task.full[split]
    x, _ = ds.tensors()
    idx = np.linspace(0, len(x) - 1, min(max_windows, len(x))).astype(int)
    return channel_similarity(x[idx].float()).mean(0).numpy()


def write_plots(task, model, outputs: dict[str, torch.Tensor], split: str, out_dir: Path) -> list[Path]:
    """Write ``forecast_<split>.png``, ``assignments_<split>.png`` (CCM) and ``similarity_<split>.png``."""
    from sigattn.plotting import pyplot, save_png

    plt = pyplot()
    paths: list[Path] = []
    pred, true = outputs["pred"].cpu().numpy(), outputs["true"].cpu().numpy()
    order = np.argsort(outputs["index"].cpu().numpy())
    pred, true = pred[order], true[order]
    ds = task.full[split]
    n_ch = min(task.params.plot_channels, pred.shape[1])
    i = len(pred) // 2
    x = ds[int(outputs["index"][order][i])][0].numpy()
    names = [task.columns[c] if c < len(task.columns) else str(c) for c in range(len(task.columns))]
    out_names = [task.columns[-1]] if task.params.features in ("S", "MS") else names
    fig, axes = plt.subplots(n_ch, 1, figsize=(8, 2.2 * n_ch), squeeze=False)
    for c in range(n_ch):
        ax = axes[c, 0]
        src = x[-1] if task.params.features == "MS" else x[c]
        L, H = len(src), pred.shape[-1]
        ax.plot(np.arange(L), src, color="0.5", lw=1, label="lookback")
        ax.plot(np.arange(L, L + H), true[i, c], color="k", lw=1, label="truth")
        ax.plot(np.arange(L, L + H), pred[i, c], color="C1", lw=1.2, label="forecast")
        ax.set_ylabel(out_names[c] if c < len(out_names) else str(c))
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[0, 0].set_title(f"{split}: window {int(outputs['index'][order][i])} (normalised scale)")
    paths.append(save_png(fig, out_dir / f"forecast_{split}.png"))

    if "assign" in outputs:
        a = outputs["assign"].cpu().numpy().mean(0)
        fig, ax = plt.subplots(figsize=(1.5 + 0.5 * a.shape[1], 1 + 0.3 * a.shape[0]))
        im = ax.imshow(a, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xticks(range(a.shape[1]))
        ax.set_xlabel("cluster")
        ax.set_title("mean assignment p(cluster | channel)", fontsize=9)
        fig.colorbar(im, ax=ax)
        paths.append(save_png(fig, out_dir / f"assignments_{split}.png"))

    s = _similarity(task, split)
    fig, ax = plt.subplots(figsize=(1.5 + 0.35 * len(s), 1 + 0.35 * len(s)))
    im = ax.imshow(s, cmap="magma", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title("channel similarity (RBF, mean over windows)", fontsize=9)
    fig.colorbar(im, ax=ax)
    paths.append(save_png(fig, out_dir / f"similarity_{split}.png"))
    return paths
