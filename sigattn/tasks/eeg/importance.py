"""Electrode importance by occlusion: how much the true-class log-probability drops when one electrode is
silenced (set to zero, the mean of band-passed, aligned EEG). A model-agnostic check of which electrodes a
trained decoder uses (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014),
complementary to DBConformer's attention weights, which rank the transformed electrode tokens.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def occlusion_importance(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Mean drop of ``log p(y | x)`` when each electrode is zeroed, shape ``(C,)`` (higher = more used).

    Args:
        model: a classifier ``(B, C, T) -> logits`` (put in eval mode by the caller).
        x: trials ``(n, C, T)``.
        y: true labels ``(n,)``.
        batch_size: trials per forward pass.

    Example:
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3, 2))
        >>> occlusion_importance(m, torch.randn(4, 2, 3), torch.tensor([0, 1, 0, 1])).shape
        torch.Size([2])
    """
    if x.dim() != 3 or y.shape != (x.shape[0],):
        raise ValueError(
            f"occlusion_importance: need x (n, C, T) and y (n,), got {tuple(x.shape)}, {tuple(y.shape)}"
        )

    def true_logp(inp: torch.Tensor) -> torch.Tensor:
        out = [
            torch.log_softmax(model(inp[i : i + batch_size]).float(), 1)
            for i in range(0, len(inp), batch_size)
        ]
        return torch.cat(out).gather(1, y[:, None]).squeeze(1)

    base = true_logp(x)
    drops = torch.empty(x.shape[1])
    for c in range(x.shape[1]):
        xc = x.clone()
        xc[:, c] = 0
        drops[c] = (base - true_logp(xc)).mean()
    return drops


@torch.no_grad()
def branch_ablation_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy of a dual-branch model (``forward_features`` -> ``[x_t; x_s]`` -> ``head``) with one branch's
    features replaced by their mean over the trials: ``{"full", "spatial_frozen", "temporal_frozen"}``.

    If freezing the spatial branch leaves the accuracy unchanged, the classifier ignores that branch, and its
    channel-attention weights cannot say which electrodes the decision rests on.

    Example:
        >>> from sigattn.models.dbconformer import DBConformer
        >>> m = DBConformer(n_chans=4, n_outputs=2, n_times=64, sfreq=32).eval()
        >>> sorted(branch_ablation_accuracy(m, torch.randn(6, 4, 64), torch.tensor([0, 1] * 3)))
        ['full', 'spatial_frozen', 'temporal_frozen']
    """
    feats = model.forward_features(x)[0]
    d = feats.shape[1] // 2

    def acc(f: torch.Tensor) -> float:
        return float((model.head(f).argmax(1) == y).float().mean())

    spatial, temporal = feats.clone(), feats.clone()
    spatial[:, d:] = feats[:, d:].mean(0)
    temporal[:, :d] = feats[:, :d].mean(0)
    return {"full": acc(feats), "spatial_frozen": acc(spatial), "temporal_frozen": acc(temporal)}
