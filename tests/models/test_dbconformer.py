"""DBConformer: shapes, hand-counted parameters, attention scale, determinism, export."""

from __future__ import annotations

import math

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
    w = m.channel_weights(x)
    assert w.shape == (4, 6)
    torch.testing.assert_close(w.sum(1), torch.ones(4))
    # the weights are the pool's attention over the spatial tokens
    h = m._spatial_tokens(x)
    torch.testing.assert_close(w, m.channel_pool.attention(h))
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
