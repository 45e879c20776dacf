"""A tiny synthetic classification task that exercises the engine end to end (smoke tests, DDP, resume).

Each item is Gaussian noise ``(C, T_i)`` of variable length; class ``k`` adds a sinusoid of amplitude
``signal`` to channel ``k``. The model is a Conv1d, a squeeze-and-excitation gate (Hu et al., "Squeeze-and-
Excitation Networks", CVPR 2018) with masked time pooling, optional dropout and a linear head; it should learn
to find the informative channel quickly.

Example:
    >>> task = ToyTask(ToyTask.Params(n_train=16, n_val=8, n_test=8))
    >>> ds = task.build_datasets()
    >>> batch = task.collate([ds["train"][i] for i in range(4)])
    >>> batch["x"].shape[:2]
    torch.Size([4, 8])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from sigattn.layers._masking import lengths_to_mask, masked_mean
from sigattn.models.ecapa import create_block_attention
from sigattn.models.registry import ModelSpec, create_model, model_spec, register_model


@dataclass
class ToyParams:
    """Recipe ``params`` of the toy task."""

    n_channels: int = 8
    n_times: int = 64
    min_times: int = 32
    n_classes: int = 3
    n_train: int = 256
    n_val: int = 64
    n_test: int = 64
    signal: float = 1.0

    def __post_init__(self) -> None:
        if not 2 <= self.n_classes <= self.n_channels:
            raise ValueError(f"n_classes must be in [2, n_channels={self.n_channels}], got {self.n_classes}")
        if not 1 <= self.min_times <= self.n_times:
            raise ValueError(f"min_times must be in [1, n_times={self.n_times}], got {self.min_times}")
        if min(self.n_train, self.n_val, self.n_test) < 0 or self.n_train == 0:
            raise ValueError("n_train must be > 0 and n_val, n_test >= 0")


class ToyDataset(Dataset):
    """Items ``(x (C, T_i) float32, label, index)``."""

    def __init__(self, p: ToyParams, n: int, seed: int):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, p.n_classes, n)
        self.lengths = rng.integers(p.min_times, p.n_times + 1, n)
        self.x = []
        for y, t in zip(self.labels, self.lengths):
            x = rng.standard_normal((p.n_channels, t)).astype(np.float32)
            phase = rng.uniform(0, 2 * np.pi)
            x[y] += p.signal * np.sin(2 * np.pi * 0.1 * np.arange(t) + phase).astype(np.float32) * np.sqrt(2)
            self.x.append(x)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, int]:
        return self.x[i], int(self.labels[i]), i


class ToyNet(nn.Module):
    """Conv1d -> ReLU -> channel attention (squeeze-excite by default) -> masked mean over time -> dropout ->
    Linear. ``attention`` is chosen as in ECAPA's blocks (:func:`~sigattn.models.ecapa.create_block_attention`):
    ``se``, ``eca``, ``cbam``, ``none`` or a registered ``(B, C, T)`` gate."""

    def __init__(
        self, n_channels: int, n_classes: int, hidden: int = 16, dropout: float = 0.0, attention: str = "se"
    ):
        super().__init__()
        self.conv = nn.Conv1d(n_channels, hidden, 5, padding=2)
        # the gate factory of ECAPA's blocks: "none", SE with this bottleneck, or any (B, C, T) gate by name
        self.se = create_block_attention(attention, hidden, se_channels=max(hidden // 4, 1), owner="ToyNet")
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.se(F.relu(self.conv(x)), lengths)
        pooled = masked_mean(h, lengths_to_mask(lengths, h.shape[-1], h)).squeeze(-1)
        return self.head(self.drop(pooled))


register_model("toy", "toynet", ToyNet)


class ToyTask:
    """The toy :class:`~sigattn.train.task.Task`: accuracy-monitored classification of synthetic noise."""

    name: ClassVar[str] = "toy"
    Params: ClassVar[type] = ToyParams
    monitor: ClassVar[str] = "acc"
    monitor_mode: ClassVar[str] = "max"
    dynamic_axes: ClassVar[dict] = {"x": {0: "batch", 2: "time"}, "logits": {0: "batch"}}

    # the recipe's model section: model.name (toynet) and ToyNet's arguments but those the data decide
    model_domain: ClassVar[str] = "toy"
    default_model: ClassVar[str] = "toynet"
    model_inputs: ClassVar[tuple[str, ...]] = ("n_channels", "n_classes")
    moved_to_model: ClassVar[dict[str, str]] = {"hidden": "hidden", "dropout": "dropout"}

    def __init__(
        self, params: ToyParams | None = None, *, seed: int = 0, model: ModelSpec | dict | None = None
    ) -> None:
        self.params = params if params is not None else ToyParams()
        self.seed = seed
        self.model = model_spec(self.model_domain, model, self.default_model, self.model_inputs)

    def build_datasets(self) -> dict[str, Dataset]:
        p = self.params
        out = {"train": ToyDataset(p, p.n_train, self.seed * 3 + 1)}
        if p.n_val:
            out["val"] = ToyDataset(p, p.n_val, self.seed * 3 + 2)
        if p.n_test:
            out["test"] = ToyDataset(p, p.n_test, self.seed * 3 + 3)
        return out

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        t_max = max(x.shape[1] for x, _, _ in items)
        x = torch.zeros(len(items), items[0][0].shape[0], t_max)
        for i, (xi, _, _) in enumerate(items):
            x[i, :, : xi.shape[1]] = torch.from_numpy(xi)
        return {
            "x": x,
            "lengths": torch.tensor([it[0].shape[1] for it in items]),
            "y": torch.tensor([it[1] for it in items]),
            "index": torch.tensor([it[2] for it in items]),
        }

    def build_model(self) -> nn.Module:
        p = self.params
        return create_model(
            self.model_domain,
            self.model.name,
            n_channels=p.n_channels,
            n_classes=p.n_classes,
            **self.model.kwargs,
        )

    def loss(
        self, model: nn.Module, batch: dict, *, epoch: int, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch["x"], batch["lengths"])
        loss = F.cross_entropy(logits.float(), batch["y"])
        acc = (logits.argmax(1) == batch["y"]).float().mean().item()
        return loss, {"acc": acc}

    def predict(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        return {"index": batch["index"], "logits": model(batch["x"], batch["lengths"]), "y": batch["y"]}

    def metrics(self, outputs: dict[str, torch.Tensor], split: str) -> dict[str, float]:
        logits, y = outputs["logits"].float(), outputs["y"]
        return {
            "acc": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item(),
            "n": float(len(y)),
        }

    def plots(
        self, model: nn.Module, outputs: dict[str, torch.Tensor], split: str, out_dir: Path
    ) -> list[Path]:
        """Confusion matrix of ``split``."""
        from sigattn.plotting import pyplot, save_png

        try:
            plt = pyplot()
        except ImportError:
            return []
        k = self.params.n_classes
        cm = np.zeros((k, k), dtype=int)
        for t, pr in zip(outputs["y"].tolist(), outputs["logits"].argmax(1).tolist()):
            cm[t, pr] += 1
        fig, ax = plt.subplots(figsize=(3.2, 3))
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set(xlabel="predicted", ylabel="true", title=f"toy {split} confusion")
        return [save_png(fig, Path(out_dir) / f"{split}_confusion.png", dpi=90)]

    def demo_checks(self, metrics: dict[str, float]) -> dict[str, bool]:
        acc = metrics.get("test/acc", float("nan"))
        return {f"toy test accuracy >= 80% (got {100 * acc:.1f}%)": acc >= 0.8}

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        p = self.params
        return (torch.randn(2, p.n_channels, p.n_times),)
