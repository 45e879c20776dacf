"""sigattn ECAPA-TDNN (paper layout): exact parameter counts, exact masking, errors, ONNX export."""

import numpy as np
import pytest
import torch

from sigattn.models.ecapa import ECAPATDNN, ecapa_c512, ecapa_c1024

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def paper_count(c, mfa=1536, feat=80, emb=192, att=128, se=128, scale=8):
    """The reference sheet's counting rule, written out independently of the model code."""
    tdnn = lambda i, o, k: i * o * k + o + 2 * o  # noqa: E731  conv weight + bias + BN affine
    w = c // scale
    block = 2 * tdnn(c, c, 1) + (scale - 1) * tdnn(w, w, 3) + (c * se + se + se * c + c)
    asp = (3 * mfa * att + att) + (att * mfa + mfa)  # conv -> tanh -> conv, no BN (paper / WeSpeaker)
    return tdnn(feat, c, 5) + 3 * block + (3 * c * mfa + mfa) + asp + 2 * (2 * mfa) + (2 * mfa * emb + emb)


def test_parameter_counts_match_reference():
    assert paper_count(512) == 6_190_720 and paper_count(1024) == 14_657_088  # reference sheet, section 6
    assert n_params(ecapa_c512()) == 6_190_720
    assert n_params(ecapa_c1024()) == 14_657_088


@pytest.mark.parametrize("global_context", [True, False])
def test_padded_batch_equals_single_utterances(global_context):
    torch.manual_seed(0)
    m = ECAPATDNN(channels=32, mfa_channels=48, embed_dim=16, se_channels=8, attention_channels=8,
                  global_context=global_context)  # fmt: skip
    for mod in m.modules():  # non-trivial BN statistics so that masking errors would show
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    m.eval()
    lengths = torch.tensor([90, 61, 23, 7])
    x = torch.randn(4, 80, 90)
    x_garbage = x.clone()
    for b, n in enumerate(lengths):
        x_garbage[b, :, n:] = 1e3 * torch.randn(80, 90 - int(n))  # padding content must not matter
    with torch.no_grad():
        batched = m(x_garbage, lengths)
        for b, n in enumerate(lengths):
            single = m(x[b : b + 1, :, :n])
            torch.testing.assert_close(batched[b : b + 1], single, atol=1e-5, rtol=1e-5)
        att = m.attention(x_garbage, lengths)
    assert att.shape == (4, 48, 90)
    torch.testing.assert_close(att.sum(-1), torch.ones(4, 48))
    assert float(att[2, :, 23:].abs().max()) == 0.0


def test_bad_input_is_named():
    m = ECAPATDNN(channels=16, mfa_channels=24, embed_dim=8)
    with pytest.raises(ValueError, match=r"axes swapped"):
        m(torch.randn(2, 50, 80))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=50\]"):
        m(torch.randn(2, 80, 50), torch.tensor([50, 60]))
    with pytest.raises(ValueError, match="integer tensor"):
        m(torch.randn(2, 80, 50), torch.tensor([0.5, 1.0]))


def test_onnx_export_dynamic_time_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    from sigattn.tasks.speaker.inference import export_onnx

    torch.manual_seed(1)
    m = ECAPATDNN(channels=32, mfa_channels=48, embed_dim=16, se_channels=8, attention_channels=8).eval()
    path = export_onnx(m, tmp_path / "ecapa.onnx", with_lengths=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for t in (57, 333):  # export traced T=200; other lengths must work
        x, lengths = torch.randn(3, 80, t), torch.tensor([t, t // 2, 20])
        got = sess.run(None, {"feats": x.numpy(), "lengths": lengths.numpy()})[0]
        with torch.no_grad():
            want = m(x, lengths).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
