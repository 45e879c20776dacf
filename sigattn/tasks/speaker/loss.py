"""Additive angular margin softmax (AAM, ArcFace) with margin warm-up and large-margin fine-tuning.

Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019; used for speaker
embeddings by ECAPA-TDNN (Desplanques et al., Interspeech 2020) with margin 0.2 and scale 30.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AAMSoftmax", "margin_schedule"]


def margin_schedule(epoch: float, margin: float, warmup_start: float = 0.0, warmup_end: float = 0.0) -> float:
    """Margin at ``epoch``: 0 before ``warmup_start``, ``margin`` after ``warmup_end``, linear in between.

    Example:
        >>> margin_schedule(1.5, 0.2, warmup_start=1, warmup_end=3)
        0.05
    """
    if warmup_end <= warmup_start:
        return margin
    frac = min(max((epoch - warmup_start) / (warmup_end - warmup_start), 0.0), 1.0)
    return round(margin * frac, 12)


class AAMSoftmax(nn.Module):
    """AAM softmax head: logits ``s * cos(theta_y + m)`` for the true class, ``s * cos(theta_j)`` otherwise.

    ``cos(theta_j) = <x / |x|, W_j / |W_j|>``. Like SpeechBrain/WeSpeaker ("easy margin" off), when
    ``theta_y + m > pi`` the target logit becomes ``cos(theta_y) - m * sin(m)`` so it stays monotonic.

    Args:
        embed_dim: embedding size (192 for ECAPA-TDNN).
        n_classes: number of training speakers.
        margin: angular margin ``m`` in radians (0.2; 0.5 for large-margin fine-tuning).
        scale: logit scale ``s`` (30).

    Example:
        >>> head = AAMSoftmax(192, 10)
        >>> loss, acc = head(torch.randn(4, 192), torch.tensor([0, 1, 2, 3]))
        >>> loss.shape
        torch.Size([])
    """

    def __init__(self, embed_dim: int, n_classes: int, margin: float = 0.2, scale: float = 30.0) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"AAMSoftmax needs at least 2 classes, got {n_classes}")
        self.weight = nn.Parameter(torch.empty(n_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.margin = float(margin)
        self.scale = float(scale)

    def cosine(self, x: Tensor) -> Tensor:
        """Cosine of each embedding ``(B, D)`` with each class centre -> ``(B, n_classes)``."""
        return F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))

    def logits(self, x: Tensor, target: Tensor, margin: float | None = None) -> Tensor:
        """Scaled logits with the margin applied to the target class."""
        m = self.margin if margin is None else float(margin)
        cos = self.cosine(x).float()
        cos_y = cos.gather(1, target[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
        sin_y = (1.0 - cos_y.pow(2)).sqrt()
        phi = cos_y * math.cos(m) - sin_y * math.sin(m)
        # beyond theta > pi - m, cos(theta + m) is no longer decreasing: use the linear CosFace-like fallback
        phi = torch.where(cos_y > math.cos(math.pi - m), phi, cos_y - m * math.sin(m))
        return self.scale * cos.scatter(1, target[:, None], phi)

    def forward(self, x: Tensor, target: Tensor, margin: float | None = None) -> tuple[Tensor, Tensor]:
        """Cross-entropy loss on the margin logits and the (margin-free) top-1 accuracy."""
        if x.dim() != 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"AAMSoftmax: expected embeddings (B, {self.weight.shape[1]}), got {tuple(x.shape)}"
            )
        loss = F.cross_entropy(self.logits(x, target, margin), target)
        with torch.no_grad():
            acc = (self.cosine(x).argmax(1) == target).float().mean()
        return loss, acc
