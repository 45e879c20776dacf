"""The trainable speaker model: an ECAPA-TDNN embedding network with an AAM-softmax head.

Desplanques et al., "ECAPA-TDNN", Interspeech 2020 (arXiv 2005.07143); Deng et al., "ArcFace", CVPR 2019.
"""

from __future__ import annotations

from torch import Tensor, nn

from .loss import AAMSoftmax

__all__ = ["SpeakerModel"]


class SpeakerModel(nn.Module):
    """Embedding network + AAM head. ``forward(feats, lengths)`` -> embeddings; with ``labels`` -> (loss, acc)."""

    def __init__(self, embedding: nn.Module, embed_dim: int, n_classes: int, margin: float, scale: float):
        super().__init__()
        self.embedding = embedding
        self.head = AAMSoftmax(embed_dim, n_classes, margin, scale)

    def forward(self, feats: Tensor, lengths: Tensor | None = None, labels: Tensor | None = None):
        emb = self.embedding(feats, lengths)
        if labels is None:
            return emb
        return self.head(emb, labels)
