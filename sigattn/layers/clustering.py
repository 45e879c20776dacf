"""Channel clustering (CCM) for multivariate forecasting.

Reference: J. Chen, J. E. Lenssen, A. Feng, W. Hu, M. Fey, L. Tassiulas, J. Leskovec, R. Ying, "From
Similarity to Superiority: Channel Clustering for Time Series Forecasting", NeurIPS 2024, arXiv 2404.01340.

The paper's description is the specification (the official code diverges from it and crashes in places).
Shapes follow the house convention: the lookback window is ``x`` of shape ``(B, C, L)``.

1. Channel embedding ``h_i = MLP(x_i)`` of each channel's z-scored lookback window, ``(B, C, d)``.
2. Learnable cluster embeddings (prototypes) ``c_k``, ``(K, d)``.
3. Assignment ``p_ik = softmax_k(cos(h_i, c_k) / tau)`` per sample (the code shares one assignment over the
   batch; we keep the paper's per-sample form, so the layer is exact for any batch composition).
4. Membership ``M ~ RelaxedBernoulli(p)`` during training (reparameterised, Jang et al. 2016); ``M = p`` in
   ``eval()`` so inference is deterministic.
5. Prototype update by masked cross-attention with learnable ``W_Q, W_K, W_V``, the mask applied before the
   normalisation: ``C' = C + Normalize(exp((W_Q C)(W_K H)^T / sqrt(d)) * M^T) W_V H``.
6. Cluster-aware head (:class:`ClusterAwareLinear`): ``Y_i = sum_k p_ik h_theta_k(Z_i)``.
7. Cluster loss (:func:`cluster_loss`): ``L_C = -Tr(M^T S M) + Tr((I - M M^T) S)`` with ``S`` an RBF channel
   similarity.

Departures from the paper, and why (measured on :func:`sigattn.synthetic.make_clustered_series`, 3 groups of
3 channels, DLinear-CCM, 4 epochs, 6 seeds):

* **Where the updated prototypes go.** The paper leaves open where ``C'`` enters the forecast (the official
  code overwrites the prototype tensor, which then never receives gradient). ``refine=True`` mixes the heads
  with ``p' = softmax(cos(h, C') / tau)``; by default (``refine=False``) the heads use ``p`` against the
  learnable prototypes, and ``C'`` is returned for inspection. With ``refine=True`` the per-sample
  prototypes drift and the recovered groups were wrong (ARI 0.5) in 3 of 6 seeds, for no gain in MSE.
* **Gradient of the forecasting loss.** By default (``assign_grad=False``) the forecasting loss trains the
  heads (and, with ``refine``, ``W_Q, W_K, W_V``) but not the channel embedding or the prototypes, which the
  cluster loss trains alone. Letting the forecast gradient through merged two groups into one cluster in
  3 of the 6 seeds we tried; stopping it recovered every group in 6 of 6 at the same test MSE.
* **Loss on the probabilities.** The cluster loss uses the soft ``p`` rather than the sampled ``M``: at the
  Bernoulli temperature 0.07 the relaxed sample saturates and an empty cluster gets no gradient (a reasoned
  choice; its effect was not separated in our runs). ``M`` still masks the prototype cross-attention.
* **Size-normalised cluster loss.** With a non-negative RBF kernel the paper's loss is minimised by putting
  every channel into one cluster (``L_C = Tr(S) - 2 sum_k m_k^T S m_k`` for symmetric ``S``; a unit test
  checks this), and a mean-centred variant we tried often stalled with two groups sharing one cluster. We
  divide each cluster's term by its size, which turns it into
  the kernel k-means distortion (see :func:`cluster_loss`; ``normalize=False`` gives the paper's form). The
  RBF bandwidth is the median pairwise squared distance of each sample (median heuristic).
* **Temperature softmax, not Sinkhorn** (the code's ``sinkhorn`` is a softmax with temperature 0.05); we use
  ``tau = 0.1`` by default. No entropy term, no channel shuffling.

Zero-shot: everything is per channel (embedding from the time axis, shared prototypes and heads), so a layer
trained on ``C`` channels runs on any other channel count.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ChannelClustering", "ClusterAwareLinear", "ClusterOutput", "channel_similarity", "cluster_loss"]


class ClusterOutput(NamedTuple):
    """What :class:`ChannelClustering` returns.

    Attributes:
        prob: ``(B, C, K)`` assignment probabilities (rows sum to 1), used to mix the cluster heads.
        membership: ``(B, C, K)`` relaxed Bernoulli memberships (training) or ``prob0`` (eval).
        prototypes: ``(B, K, d)`` cluster embeddings after the cross-attention update.
        embedding: ``(B, C, d)`` channel embeddings.
        prob0: ``(B, C, K)`` first-pass assignment against the learnable prototypes.
    """

    prob: Tensor
    membership: Tensor
    prototypes: Tensor
    embedding: Tensor
    prob0: Tensor


def _zscore(x: Tensor, eps: float = 1e-5) -> Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    std = (x - mean).pow(2).mean(dim=-1, keepdim=True).add(eps).sqrt()
    return (x - mean) / std


def _check_window(x: Tensor, seq_len: int | None = None) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor of shape (B, C, L), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"expected a lookback window of shape (B, C, L), got shape {tuple(x.shape)}")
    if seq_len is not None and x.shape[-1] != seq_len:
        raise ValueError(f"expected lookback length L={seq_len}, got shape {tuple(x.shape)}")


def channel_similarity(x: Tensor, normalize: bool = True, bandwidth: float | None = None) -> Tensor:
    """RBF similarity between the channels of each lookback window.

    ``S_ij = exp(-||x_i - x_j||^2 / sigma^2)`` where ``sigma^2`` is ``bandwidth`` times the window length, or
    (``bandwidth=None``) the median of the off-diagonal squared distances of that sample.

    Args:
        x: ``(B, C, L)`` windows.
        normalize: z-score each channel's window first, so similarity is about shape, not scale.
        bandwidth: fixed squared bandwidth per time step; ``None`` = median heuristic per sample.

    Returns:
        ``(B, C, C)`` symmetric similarities in ``(0, 1]`` with ones on the diagonal.

    Example:
        >>> s = channel_similarity(torch.randn(2, 5, 96))
        >>> s.shape
        torch.Size([2, 5, 5])
    """
    _check_window(x)
    z = _zscore(x) if normalize else x
    d2 = torch.cdist(z, z).pow(2)
    n = x.shape[1]
    if bandwidth is not None:
        sigma2 = torch.full(
            (x.shape[0], 1, 1), float(bandwidth) * x.shape[-1], dtype=x.dtype, device=x.device
        )
    elif n > 1:
        off = ~torch.eye(n, dtype=torch.bool, device=x.device)
        sigma2 = d2[:, off].median(dim=-1).values.clamp_min(1e-6)[:, None, None]
    else:
        sigma2 = torch.ones(x.shape[0], 1, 1, dtype=x.dtype, device=x.device)
    return torch.exp(-d2 / sigma2)


def cluster_loss(membership: Tensor, similarity: Tensor, normalize: bool = True) -> Tensor:
    """The CCM cluster loss, averaged over the batch.

    ``normalize=False`` is the paper's form ``-Tr(M^T S M) + Tr((I - M M^T) S)``. ``normalize=True`` (the
    default) divides each cluster's term by its size, ``(Tr(S) - sum_k m_k^T S m_k / (1^T m_k)) / C``: the
    kernel k-means distortion with kernel ``S``. The paper's form is minimised by one cluster holding every
    channel (``S >= 0``), and it has local minima where two groups share a cluster; the size-normalised form
    rewards splitting dissimilar channels, is bounded in ``[0, 1]`` for soft assignments, and does not grow
    with the channel count.

    Args:
        membership: ``(B, C, K)`` memberships ``M``.
        similarity: ``(B, C, C)`` channel similarities ``S``.
        normalize: size-normalised (default) or the paper's literal form.

    Returns:
        Scalar loss.

    Example:
        >>> m = torch.softmax(torch.randn(2, 4, 3), -1)
        >>> cluster_loss(m, channel_similarity(torch.randn(2, 4, 32))).shape
        torch.Size([])
    """
    if membership.dim() != 3 or similarity.dim() != 3:
        raise ValueError(
            f"expected membership (B, C, K) and similarity (B, C, C), got {tuple(membership.shape)} "
            f"and {tuple(similarity.shape)}"
        )
    b, n, _ = membership.shape
    if similarity.shape != (b, n, n):
        raise ValueError(f"similarity must be {(b, n, n)} for membership {tuple(membership.shape)}")
    s = similarity
    trace_s = torch.diagonal(s, dim1=-2, dim2=-1).sum(-1)
    within = torch.diagonal(membership.transpose(1, 2) @ s @ membership, dim1=-2, dim2=-1)  # (B, K)
    if normalize:
        loss = (trace_s - (within / (membership.sum(1) + 1e-6)).sum(-1)) / n
    else:
        eye = torch.eye(n, dtype=s.dtype, device=s.device)
        mmt = membership @ membership.transpose(1, 2)
        loss = -within.sum(-1) + torch.diagonal((eye - mmt) @ s, dim1=-2, dim2=-1).sum(-1)
    return loss.mean()


class ChannelClustering(nn.Module):
    """Cluster assigner of CCM: channel embeddings, prototypes, assignment and prototype update.

    Args:
        seq_len: lookback length ``L``.
        n_clusters: number of clusters ``K``.
        d_model: embedding size ``d``.
        hidden: hidden width of the channel-embedding MLP (default ``d_model``).
        temperature: softmax temperature ``tau`` of the assignment.
        bern_temperature: temperature of the relaxed Bernoulli membership (training only).
        refine: mix the heads with the assignment against the cross-attention-updated prototypes.
        assign_grad: let the forecasting loss flow into the channel embedding and prototypes (see module docs).

    Example:
        >>> ccm = ChannelClustering(seq_len=96, n_clusters=3)
        >>> out = ccm(torch.randn(4, 7, 96))
        >>> out.prob.shape, bool(torch.allclose(out.prob.sum(-1), torch.ones(4, 7)))
        (torch.Size([4, 7, 3]), True)
    """

    def __init__(
        self,
        seq_len: int,
        n_clusters: int,
        d_model: int = 64,
        hidden: int | None = None,
        temperature: float = 0.1,
        bern_temperature: float = 0.07,
        refine: bool = False,
        assign_grad: bool = False,
    ) -> None:
        super().__init__()
        if seq_len < 1 or n_clusters < 1 or d_model < 1:
            raise ValueError(
                f"seq_len, n_clusters, d_model must be >= 1, got {seq_len}, {n_clusters}, {d_model}"
            )
        if temperature <= 0 or bern_temperature <= 0:
            raise ValueError(f"temperatures must be > 0, got {temperature} and {bern_temperature}")
        hidden = hidden or d_model
        self.seq_len, self.n_clusters, self.d_model = seq_len, n_clusters, d_model
        self.temperature, self.bern_temperature = temperature, bern_temperature
        self.refine, self.assign_grad = refine, assign_grad
        self.embed = nn.Sequential(nn.Linear(seq_len, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        self.prototypes = nn.Parameter(torch.empty(n_clusters, d_model))
        nn.init.orthogonal_(self.prototypes) if n_clusters <= d_model else nn.init.normal_(self.prototypes)
        self.w_q = nn.Linear(d_model, d_model, bias=False)
        self.w_k = nn.Linear(d_model, d_model, bias=False)
        self.w_v = nn.Linear(d_model, d_model, bias=False)
        nn.init.zeros_(self.w_v.weight)  # start from the learnable prototypes; the update grows in training

    def _assign(self, h: Tensor, protos: Tensor) -> Tensor:
        sim = torch.einsum("bcd,bkd->bck", F.normalize(h, dim=-1), F.normalize(protos, dim=-1))
        return torch.softmax(sim / self.temperature, dim=-1)

    def _membership(self, p: Tensor) -> Tensor:
        if not self.training:
            return p
        eps = 1e-6
        p = p.clamp(eps, 1 - eps)
        u = torch.rand_like(p).clamp(eps, 1 - eps)
        return torch.sigmoid((torch.log(p / (1 - p)) + torch.log(u / (1 - u))) / self.bern_temperature)

    def forward(self, x: Tensor) -> ClusterOutput:
        """Cluster the channels of ``x`` ``(B, C, L)``; see :class:`ClusterOutput`."""
        _check_window(x, self.seq_len)
        b = x.shape[0]
        h = self.embed(_zscore(x))
        protos = self.prototypes.unsqueeze(0).expand(b, -1, -1)
        p0 = self._assign(h, protos)
        m = self._membership(p0)
        # What the forecasting loss may move: everything (assign_grad) or only W_Q, W_K, W_V (see module docs).
        hs, ps, ms = (h, protos, m) if self.assign_grad else (h.detach(), protos.detach(), m.detach())
        q, k, v = self.w_q(ps), self.w_k(hs), self.w_v(hs)
        logits = q @ k.transpose(1, 2) / math.sqrt(self.d_model)  # (B, K, C)
        # exp(logits) * M^T normalised over channels, computed stably in the log domain.
        attn = torch.softmax(logits + torch.log(ms.transpose(1, 2) + 1e-8), dim=-1)
        updated = ps + attn @ v
        if self.refine:
            p = self._assign(hs, updated)
        else:
            p = p0 if self.assign_grad else p0.detach()
        return ClusterOutput(p, m, updated, h, p0)

    def attention(self, x: Tensor) -> Tensor:
        """Assignment probabilities ``(B, C, K)`` alone (the weights users plot)."""
        return self.forward(x).prob

    def loss(self, x: Tensor, out: ClusterOutput) -> Tensor:
        """Cluster loss of an output of this layer on window ``x`` (on the soft ``prob0``; see module docs)."""
        return cluster_loss(out.prob0, channel_similarity(x))


class ClusterAwareLinear(nn.Module):
    """``K`` linear heads mixed per channel by the assignment: ``Y_i = sum_k p_ik (W_k z_i + b_k)``.

    Args:
        in_features: input size per channel.
        out_features: output size per channel.
        n_clusters: number of heads ``K``.

    Example:
        >>> head = ClusterAwareLinear(96, 24, n_clusters=3)
        >>> p = torch.softmax(torch.randn(2, 7, 3), -1)
        >>> head(torch.randn(2, 7, 96), p).shape
        torch.Size([2, 7, 24])
    """

    def __init__(self, in_features: int, out_features: int, n_clusters: int) -> None:
        super().__init__()
        self.in_features, self.out_features, self.n_clusters = in_features, out_features, n_clusters
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(n_clusters, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_clusters, out_features).uniform_(-bound, bound))

    def forward(self, z: Tensor, prob: Tensor) -> Tensor:
        """``z`` ``(B, C, in)`` and ``prob`` ``(B, C, K)`` -> ``(B, C, out)``."""
        if z.dim() != 3 or z.shape[-1] != self.in_features:
            raise ValueError(f"expected z of shape (B, C, {self.in_features}), got {tuple(z.shape)}")
        if prob.shape != (*z.shape[:2], self.n_clusters):
            raise ValueError(
                f"expected prob of shape {(*z.shape[:2], self.n_clusters)}, got {tuple(prob.shape)}"
            )
        # Run the K heads, then mix their outputs (mixing the weights instead would need a (B, C, in, out)
        # tensor; the two are equal for linear heads).
        y = torch.einsum("bci,kio->bcko", z, self.weight) + self.bias
        return torch.einsum("bck,bcko->bco", prob, y)
