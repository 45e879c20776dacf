"""DBConformer: shapes, hand-counted parameters, attention scale, determinism, export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sigattn.layers import ChannelAttentionPool
from sigattn.models.dbconformer import ConformerBlock, DBConformer


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()  # tiny models: OpenMP threads spin badly when the CPU is shared
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_count_matches_reference_hand_count():
    # reference sheet 1.4: 93,747 for BNCI2014001 2-class; 93,813 for 4 classes; components as listed
    m = DBConformer(n_chans=22, n_outputs=2, n_times=1001, sfreq=250)
    assert _count(m) == 93_747
    assert _count(m.temporal_stem) == 3_560
    assert _count(m.spatial_embed) == 1_096
    assert m.temporal_pos.numel() + m.spatial_pos.numel() == 1_200
    assert _count(m.temporal_encoder[0]) == 19_720
    assert _count(m.head) == 7_330
    assert _count(m.channel_pool) == 1_681
    assert isinstance(m.channel_pool, ChannelAttentionPool)
    assert m.n_patches == 8
    assert _count(DBConformer(n_chans=22, n_outputs=4, n_times=1001, sfreq=250)) == 93_813
    # Blankertz2007: 59 channels, 750 samples
    assert _count(DBConformer(n_chans=59, n_outputs=2, n_times=750, sfreq=250)) == 96_627


def test_shapes_and_channel_weights():
    torch.manual_seed(0)
    m = DBConformer(n_chans=6, n_outputs=3, n_times=200, sfreq=100).eval()
    x = torch.randn(4, 6, 200)
    assert m(x).shape == (4, 3)
    w = m.channel_weights(x, method="pool")
    assert w.shape == (4, 6)
    torch.testing.assert_close(w.sum(1), torch.ones(4))
    # the raw weights are the pool's attention over the transformed spatial tokens
    h = m._spatial_tokens(x)
    torch.testing.assert_close(w, m.channel_pool.attention(h))
    r = m.channel_weights(x)  # default: rollout, also a distribution over electrodes
    assert r.shape == (4, 6) and (r >= 0).all()
    torch.testing.assert_close(r.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="rollout, pool"):
        m.channel_weights(x, method="grad")
    feats, _ = m.forward_features(x)
    torch.testing.assert_close(feats[:, 40:], m.channel_pool(h))


def test_attention_scale_is_sqrt_emb_size():
    torch.manual_seed(0)
    blk = ConformerBlock(40, n_heads=10).eval()
    x = torch.randn(2, 5, 40)
    a = blk.attn
    q = a.query(x).reshape(2, 5, 10, 4).transpose(1, 2)
    k = a.key(x).reshape(2, 5, 10, 4).transpose(1, 2)
    v = a.value(x).reshape(2, 5, 10, 4).transpose(1, 2)
    att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(40), -1)
    ref = a.proj((att @ v).transpose(1, 2).reshape(2, 5, 40))
    torch.testing.assert_close(a(x), ref)
    # pre-LN residual structure
    y = x + a(blk.norm1(x))
    torch.testing.assert_close(blk(x), y + blk.ffn(blk.norm2(y)))


def test_deterministic_in_eval_and_batch_independent():
    torch.manual_seed(1)
    m = DBConformer(n_chans=8, n_outputs=2, n_times=128, sfreq=64).eval()
    x = torch.randn(5, 8, 128)
    torch.testing.assert_close(m(x), m(x))
    torch.testing.assert_close(m(x)[2:3], m(x[2:3]), rtol=1e-5, atol=1e-6)


def test_chs_info_and_window_seconds():
    m = DBConformer(
        chs_info=[{"ch_name": "C3"}, {"ch_name": "C4"}], n_outputs=2, input_window_seconds=2, sfreq=64
    )
    assert (m.n_chans, m.n_times, m.patch_size, m.ch_names) == (2, 128, 32, ["C3", "C4"])
    with pytest.raises(ValueError, match="n_chans=3 but chs_info lists 2"):
        DBConformer(n_chans=3, chs_info=["C3", "C4"], n_times=100)
    with pytest.raises(ValueError, match="needs n_chans"):
        DBConformer(n_outputs=2, n_times=100)
    with pytest.raises(ValueError, match="patch_size"):
        DBConformer(n_chans=2, n_times=100, patch_size=200)


def test_bad_input_shape_names_expected():
    m = DBConformer(n_chans=4, n_times=64, sfreq=32)
    with pytest.raises(ValueError, match=r"\(batch, 4, 64\).*\(2, 5, 64\)"):
        m(torch.randn(2, 5, 64))


def test_learns_a_channel_power_difference():
    torch.manual_seed(0)
    n, c, t = 48, 4, 64
    y = torch.arange(n) % 2
    x = torch.randn(n, c, t)
    x[:, 1] *= 1 + 2 * y[:, None].float()  # class 1: channel 1 has 3x the amplitude
    m = DBConformer(n_chans=c, n_outputs=2, n_times=t, sfreq=32, dropout=0.1)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert (m(x).argmax(1) == y).float().mean() > 0.9


def test_torchscript_and_export_match_eager():
    torch.manual_seed(0)
    m = DBConformer(n_chans=6, n_outputs=2, n_times=96, sfreq=48).eval()
    x = torch.randn(3, 6, 96)
    ref = m(x)
    traced = torch.jit.trace(m, (x,))
    torch.testing.assert_close(traced(x), ref)
    ep = torch.export.export(m, (x,))
    torch.testing.assert_close(ep.module()(x), ref)


def test_bfloat16_forward():
    m = DBConformer(n_chans=4, n_outputs=2, n_times=64, sfreq=32).eval().to(torch.bfloat16)
    out = m(torch.randn(2, 4, 64, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    m = DBConformer(n_chans=6, n_outputs=2, n_times=96, sfreq=48).eval()
    x = torch.randn(3, 6, 96)
    path = tmp_path / "db.onnx"
    torch.onnx.export(m, (x,), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)  # fmt: skip
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x5 = torch.randn(5, 6, 96)
    (out,) = sess.run(None, {"x": x5.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), m(x5), rtol=1e-4, atol=1e-5)


def _np_layer_norm(x, ln):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + ln.eps) * ln.weight.detach().numpy() + ln.bias.detach().numpy()


def _np_linear(x, lin):
    return x @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()


def test_attention_rollout_matches_numpy_hand_computation():
    """Rollout (Abnar & Zuidema 2020) recomputed in NumPy from the weights: attention maps of each spatial block
    (LN, Q/K, softmax with 1/sqrt(D)), head average, (A + I) / 2, product over blocks, then the pool weights."""
    torch.manual_seed(3)
    c, d, heads = 5, 8, 2
    m = DBConformer(n_chans=c, n_outputs=2, n_times=40, sfreq=20, emb_size=d, n_heads=heads,
                    depth_spatial=3).eval()  # fmt: skip
    x = torch.randn(2, c, 40)
    with torch.no_grad():
        tokens = m.spatial_embed(x.reshape(2 * c, 1, 40)).reshape(2, c, d) + m.spatial_pos
        maps_t = m.spatial_attention_maps(x)
        rollout_t = m.attention_rollout(x)
        w_t = m.channel_weights(x)
        alpha_t = m.channel_weights(x, method="pool")
    h = tokens.numpy().astype(np.float64)
    rollout = np.stack([np.eye(c)] * 2)
    for blk, att_t in zip(m.spatial_encoder, maps_t, strict=True):
        z = _np_layer_norm(h, blk.norm1)
        q = _np_linear(z, blk.attn.query).reshape(2, c, heads, d // heads).transpose(0, 2, 1, 3)
        k = _np_linear(z, blk.attn.key).reshape(2, c, heads, d // heads).transpose(0, 2, 1, 3)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        att = np.exp(s - s.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        np.testing.assert_allclose(att_t.numpy(), att, rtol=1e-4, atol=1e-6)
        a = 0.5 * (att.mean(1) + np.eye(c))
        rollout = np.einsum("bij,bjk->bik", a, rollout)
        with torch.no_grad():  # advance the tokens with the block itself (its FFN is not part of the rollout)
            h = blk(torch.from_numpy(h).float()).numpy().astype(np.float64)
    np.testing.assert_allclose(rollout_t.numpy(), rollout, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rollout.sum(-1), 1.0, rtol=1e-6)
    w = np.einsum("bc,bcj->bj", alpha_t.numpy(), rollout)
    np.testing.assert_allclose(w_t.numpy(), w, rtol=1e-4, atol=1e-6)


def test_rollout_of_identity_attention_is_the_pool_and_one_block_is_half_mixing():
    torch.manual_seed(0)
    m = DBConformer(
        n_chans=3, n_outputs=2, n_times=32, sfreq=16, emb_size=4, n_heads=1, depth_spatial=1
    ).eval()
    x = torch.randn(1, 3, 32)
    with torch.no_grad():
        (att,) = m.spatial_attention_maps(x)
        a = att[0, 0]
        torch.testing.assert_close(m.attention_rollout(x)[0], 0.5 * (a + torch.eye(3)))
        # with the query/key projections zeroed every token attends uniformly: R = (1/3 + I) / 2
        blk = m.spatial_encoder[0].attn
        for lin in (blk.query, blk.key):
            lin.weight.zero_()
            lin.bias.zero_()
        r = m.attention_rollout(x)[0]
        torch.testing.assert_close(r, 0.5 * (torch.full((3, 3), 1 / 3) + torch.eye(3)))
        alpha = m.channel_weights(x, method="pool")[0]
        torch.testing.assert_close(m.channel_weights(x)[0], 0.5 * alpha + 1 / 6)


def test_channel_weights_do_not_change_forward_or_export():
    torch.manual_seed(0)
    m = DBConformer(n_chans=6, n_outputs=2, n_times=96, sfreq=48).eval()
    x = torch.randn(3, 6, 96)
    ref = m(x)
    m.channel_weights(x)
    torch.testing.assert_close(m(x), ref)
    torch.testing.assert_close(torch.export.export(m, (x,)).module()(x), ref)
    torch.testing.assert_close(torch.jit.trace(m, (x,))(x), ref)


def _head_input(m: DBConformer, x: torch.Tensor) -> torch.Tensor:
    seen = []
    h = m.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    try:
        m(x)
    finally:
        h.remove()
    return seen[0]


def test_branch_dropout_is_identity_at_zero_and_in_eval():
    torch.manual_seed(0)
    ref = DBConformer(n_chans=6, n_outputs=2, n_times=96, sfreq=48)
    bd = DBConformer(n_chans=6, n_outputs=2, n_times=96, sfreq=48, branch_dropout=0.5)
    assert ref.branch_dropout == 0.0 and bd.branch_dropout == 0.5
    x = torch.randn(5, 6, 96)
    for train in (True, False):  # p = 0: the previous forward, head(forward_features), dropout RNG included
        ref.train(train)
        torch.manual_seed(1)
        out = ref(x)
        torch.manual_seed(1)
        torch.testing.assert_close(out, ref.head(ref.forward_features(x)[0]), rtol=0, atol=0)
    bd.load_state_dict(ref.state_dict())  # same weights and BN statistics; no extra parameters or buffers
    ref.eval(), bd.eval()
    torch.testing.assert_close(bd(x), ref(x), rtol=0, atol=0)  # eval: no effect
    torch.testing.assert_close(torch.jit.trace(bd, (x,))(x), ref(x))
    torch.testing.assert_close(torch.export.export(bd, (x,)).module()(x), ref(x))
    with pytest.raises(ValueError, match="branch_dropout"):
        DBConformer(n_chans=6, n_outputs=2, n_times=96, sfreq=48, branch_dropout=1.0)


def test_branch_dropout_zeroes_exactly_one_branch_per_dropped_sample():
    p = 0.5
    m = DBConformer(n_chans=4, n_outputs=2, n_times=64, sfreq=32, branch_dropout=p).train()
    # on features: each row is kept (rescaled) or has exactly one half zeroed, the other rescaled
    torch.manual_seed(0)
    f = torch.rand(4000, 80) + 0.1
    out = m.drop_branches(f)
    scaled = f / (1 - p / 2)
    zero_t, zero_s = (out[:, :40] == 0).all(1), (out[:, 40:] == 0).all(1)
    assert not (zero_t & zero_s).any()
    torch.testing.assert_close(out[~zero_t, :40], scaled[~zero_t, :40])
    torch.testing.assert_close(out[~zero_s, 40:], scaled[~zero_s, 40:])
    dropped = zero_t | zero_s
    assert abs(dropped.float().mean().item() - p) < 0.04  # 4000 draws: sd 0.008
    assert abs(zero_s[dropped].float().mean().item() - 0.5) < 0.05
    torch.testing.assert_close(out.mean(0), f.mean(0), atol=0.03, rtol=0.03)  # expectation kept
    # in the model: the head's input under a fixed seed, against the same features without branch dropout
    x = torch.randn(64, 4, 64)
    torch.manual_seed(3)
    got = _head_input(m, x)
    torch.manual_seed(3)
    feats = m.forward_features(x)[0]  # same dropout draws inside the branches
    zt, zs = (got[:, :40] == 0).all(1), (got[:, 40:] == 0).all(1)
    assert not (zt & zs).any() and (zt | zs).any() and (~(zt | zs)).any()
    torch.testing.assert_close(got[~zt, :40], feats[~zt, :40] / (1 - p / 2))
    torch.testing.assert_close(got[~zs, 40:], feats[~zs, 40:] / (1 - p / 2))
    m.eval()
    torch.testing.assert_close(_head_input(m, x), m.forward_features(x)[0], rtol=0, atol=0)


def test_electrode_embedding_std_scales_only_the_spatial_embedding_init():
    kw = dict(n_chans=6, n_outputs=3, n_times=96, sfreq=48)
    torch.manual_seed(0)
    ref = DBConformer(**kw)
    torch.manual_seed(0)
    same = DBConformer(**kw, electrode_embedding_std=1.0)
    for (k, a), b in zip(ref.state_dict().items(), same.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)  # default = the paper's randn, bit for bit
    for std in (0.1, 0.0):
        torch.manual_seed(0)
        m = DBConformer(**kw, electrode_embedding_std=std)
        assert _count(m) == _count(ref)  # no parameter added or removed
        for (k, a), b in zip(ref.state_dict().items(), m.state_dict().values(), strict=True):
            want = a * std if k == "spatial_pos" else a  # same RNG stream: only the embedding differs
            torch.testing.assert_close(b, want, rtol=0, atol=0, msg=k)
        assert m.spatial_pos.requires_grad
    zero = DBConformer(**kw, electrode_embedding_std=0.0)
    assert torch.count_nonzero(zero.spatial_pos) == 0
    x = torch.randn(4, 6, 96)
    zero(x).sum().backward()  # zero-initialised embeddings still learn
    assert zero.spatial_pos.grad is not None and zero.spatial_pos.grad.abs().sum() > 0
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="electrode_embedding_std"):
            DBConformer(**kw, electrode_embedding_std=bad)
