"""ChannelClustering (CCM): assignment, masked prototype cross-attention, heads, cluster loss, zero-shot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from sigattn.layers.clustering import ChannelClustering, ClusterAwareLinear, channel_similarity, cluster_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _zscore_np(x):
    m = x.mean(-1, keepdims=True)
    return (x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + 1e-5)


def test_assignment_rows_sum_to_one_and_eval_membership_is_prob():
    torch.manual_seed(0)
    ccm = ChannelClustering(seq_len=32, n_clusters=4).eval()
    out = ccm(torch.randn(3, 6, 32))
    assert (
        out.prob.shape == (3, 6, 4)
        and out.prototypes.shape == (3, 4, 64)
        and out.embedding.shape == (3, 6, 64)
    )
    torch.testing.assert_close(out.prob.sum(-1), torch.ones(3, 6))
    assert (out.prob >= 0).all()
    torch.testing.assert_close(out.membership, out.prob0)
    ccm.train()
    out = ccm(torch.randn(3, 6, 32))
    assert ((out.membership >= 0) & (out.membership <= 1)).all()
    assert not torch.allclose(out.membership, out.prob0)  # a relaxed Bernoulli sample, not the probabilities


def test_zero_shot_more_channels_and_per_channel_assignment():
    torch.manual_seed(1)
    ccm = ChannelClustering(seq_len=24, n_clusters=3).eval()
    opt = torch.optim.SGD(ccm.parameters(), lr=0.1)
    x4 = torch.randn(8, 4, 24)
    ccm.train()
    loss = ccm.loss(x4, ccm(x4))
    loss.backward()
    opt.step()
    ccm.eval()
    x11 = torch.randn(2, 11, 24)
    p = ccm(x11).prob
    assert p.shape == (2, 11, 3)
    # The assignment of a channel depends on that channel alone (embedding from its own time axis).
    for c in (0, 5, 10):
        torch.testing.assert_close(ccm(x11[:, c : c + 1]).prob[:, 0], p[:, c], atol=1e-6, rtol=1e-5)


def test_prototype_update_matches_hand_formula():
    """C' = C + Normalize(exp((W_Q C)(W_K H)^T / sqrt(d)) * M^T) W_V H, mask before normalisation."""
    torch.manual_seed(2)
    d = 8
    ccm = ChannelClustering(seq_len=16, n_clusters=3, d_model=d).eval()
    torch.nn.init.normal_(ccm.w_v.weight)
    x = torch.randn(2, 5, 16)
    out = ccm(x)
    C = ccm.prototypes.detach().numpy().astype(np.float64)
    H = out.embedding.detach().numpy().astype(np.float64)
    M = out.membership.detach().numpy().astype(np.float64)
    WQ, WK, WV = (w.weight.detach().numpy().astype(np.float64) for w in (ccm.w_q, ccm.w_k, ccm.w_v))
    for b in range(2):
        a = np.exp((C @ WQ.T) @ (H[b] @ WK.T).T / math.sqrt(d)) * M[b].T  # (K, C)
        a = a / a.sum(1, keepdims=True)
        ref = C + a @ (H[b] @ WV.T)
        np.testing.assert_allclose(out.prototypes[b].detach().numpy(), ref, rtol=1e-4, atol=1e-5)


def test_assignment_is_temperature_softmax_of_cosine_similarity():
    torch.manual_seed(3)
    ccm = ChannelClustering(seq_len=16, n_clusters=3, d_model=8, temperature=0.2).eval()
    out = ccm(torch.randn(2, 4, 16))
    h = out.embedding.detach().numpy()
    c = ccm.prototypes.detach().numpy()
    cos = (h / np.linalg.norm(h, axis=-1, keepdims=True)) @ (c / np.linalg.norm(c, axis=-1, keepdims=True)).T
    e = np.exp(cos / 0.2)
    np.testing.assert_allclose(out.prob.detach().numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_cluster_aware_linear_is_assignment_mix_of_heads():
    torch.manual_seed(4)
    head = ClusterAwareLinear(10, 6, n_clusters=3)
    z = torch.randn(2, 5, 10)
    p = torch.softmax(torch.randn(2, 5, 3), -1)
    y = head(z, p)
    ref = sum(p[..., k : k + 1] * (z @ head.weight[k] + head.bias[k]) for k in range(3))
    torch.testing.assert_close(y, ref)
    onehot = torch.nn.functional.one_hot(torch.tensor([[2, 0, 1, 1, 2]] * 2), 3).float()
    y1 = head(z, onehot)
    torch.testing.assert_close(y1[:, 1], z[:, 1] @ head.weight[0] + head.bias[0])
    with pytest.raises(ValueError, match="prob"):
        head(z, p[..., :2])


def test_similarity_matches_scipy_rbf_with_median_bandwidth():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 6, 40))
    s = channel_similarity(torch.from_numpy(x)).numpy()
    for b in range(2):
        z = _zscore_np(x[b])
        d2 = cdist(z, z, "sqeuclidean")
        sigma2 = np.median(d2[~np.eye(6, dtype=bool)])
        np.testing.assert_allclose(s[b], np.exp(-d2 / sigma2), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.diagonal(s, axis1=1, axis2=2), 1.0, atol=1e-6)


def test_cluster_loss_paper_form_matches_traces():
    rng = np.random.default_rng(6)
    m = rng.uniform(size=(2, 5, 3))
    a = rng.normal(size=(2, 5, 5))
    s = a @ a.transpose(0, 2, 1)
    ref = np.mean(
        [-np.trace(m[b].T @ s[b] @ m[b]) + np.trace((np.eye(5) - m[b] @ m[b].T) @ s[b]) for b in range(2)]
    )
    got = cluster_loss(torch.from_numpy(m), torch.from_numpy(s), normalize=False)
    np.testing.assert_allclose(float(got), ref, rtol=1e-10)


def test_normalized_cluster_loss_is_kernel_kmeans_distortion():
    """With a linear kernel S = X X^T and hard memberships: (1/C) sum_i ||x_i - mean of its cluster||^2."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 4))
    labels = np.array([0, 1, 0, 2, 1, 0])
    m = np.eye(3)[labels][None]
    s = (x @ x.T)[None]
    ref = np.mean([np.sum((x[i] - x[labels == labels[i]].mean(0)) ** 2) for i in range(6)])
    got = cluster_loss(torch.from_numpy(m), torch.from_numpy(s))
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)


def test_paper_loss_prefers_one_cluster_normalized_prefers_true_groups():
    """Why sigattn normalises by cluster size (documented departure)."""
    base = torch.randn(2, 1, 64)
    x = torch.cat([base[0:1].expand(1, 3, 64), base[1:2].expand(1, 3, 64)], 1) + 0.1 * torch.randn(1, 6, 64)
    s = channel_similarity(x)
    truth = torch.nn.functional.one_hot(torch.tensor([[0, 0, 0, 1, 1, 1]]), 2).float()
    single = torch.nn.functional.one_hot(torch.zeros(1, 6, dtype=torch.long), 2).float()
    assert cluster_loss(single, s, normalize=False) < cluster_loss(truth, s, normalize=False)
    assert cluster_loss(truth, s) < cluster_loss(single, s)


def test_gradients_reach_assigner_only_through_cluster_loss_by_default():
    torch.manual_seed(8)
    x = torch.randn(4, 5, 16)
    for assign_grad in (False, True):
        ccm = ChannelClustering(16, 3, d_model=8, assign_grad=assign_grad)
        out = ccm(x)
        out.prob.sum().backward(retain_graph=True) if out.prob.requires_grad else None
        has = ccm.embed[0].weight.grad is not None and ccm.embed[0].weight.grad.abs().sum() > 0
        assert has == assign_grad
        ccm.zero_grad()
        ccm.loss(x, ccm(x)).backward()
        assert ccm.embed[0].weight.grad.abs().sum() > 0 and ccm.prototypes.grad.abs().sum() > 0


def test_assigner_recovers_synthetic_groups():
    from sigattn.synthetic.multivariate import make_clustered_series
    from sigattn.tasks.forecast.metrics import adjusted_rand_index

    s = make_clustered_series(n_groups=3, channels_per_group=3, length=1500, seed=1)
    x = torch.from_numpy(s.data).unfold(1, 96, 1).permute(1, 0, 2).contiguous()
    torch.manual_seed(1)
    ccm = ChannelClustering(96, 3)
    opt = torch.optim.Adam(ccm.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(250):
        b = x[torch.randint(0, len(x), (32,), generator=g)]
        loss = ccm.loss(b, ccm(b))
        opt.zero_grad()
        loss.backward()
        opt.step()
    ccm.eval()
    with torch.no_grad():
        labels = ccm(x[::20]).prob.mean(0).argmax(-1).numpy()
    assert adjusted_rand_index(s.labels, labels) >= 0.9


def test_bad_input_is_named():
    ccm = ChannelClustering(16, 2)
    with pytest.raises(ValueError, match=r"L=16"):
        ccm(torch.randn(2, 3, 20))
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        ccm(torch.randn(3, 16))
    with pytest.raises(TypeError):
        ccm(np.zeros((1, 2, 16)))
    with pytest.raises(ValueError, match="temperature"):
        ChannelClustering(16, 2, temperature=0)
    with pytest.raises(ValueError, match="similarity must be"):
        cluster_loss(torch.rand(2, 4, 3), torch.rand(2, 5, 5))
