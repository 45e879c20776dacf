"""AAM softmax against the ArcFace formula computed by hand; margin warm-up."""

import math

import pytest
import torch
import torch.nn.functional as F

from sigattn.tasks.speaker.loss import AAMSoftmax, margin_schedule


def test_aam_logits_match_formula():
    torch.manual_seed(0)
    head = AAMSoftmax(8, 5, margin=0.2, scale=30.0)
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    got = head.logits(x, y)
    w = head.weight.detach()
    for i in range(6):
        for j in range(5):
            cos = float(x[i] @ w[j] / x[i].norm() / w[j].norm())
            theta = math.acos(cos)
            want = 30.0 * (math.cos(theta + 0.2) if j == y[i] and theta + 0.2 <= math.pi else cos)
            if j == y[i] and theta + 0.2 > math.pi:
                want = 30.0 * (cos - 0.2 * math.sin(0.2))
            assert float(got[i, j]) == pytest.approx(want, abs=1e-4)
    loss, acc = head(x, y)
    assert float(loss) == pytest.approx(float(F.cross_entropy(got, y)), rel=1e-6)
    assert 0.0 <= float(acc) <= 1.0


def test_zero_margin_is_scaled_cosine_softmax():
    torch.manual_seed(1)
    head = AAMSoftmax(4, 3, margin=0.0, scale=10.0)
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    cos = F.normalize(x, dim=1) @ F.normalize(head.weight.detach(), dim=1).T
    torch.testing.assert_close(head.logits(x, y), 10.0 * cos, atol=1e-5, rtol=0)


def test_margin_schedule_and_errors():
    assert margin_schedule(0, 0.2, 1, 3) == 0.0
    assert margin_schedule(2, 0.2, 1, 3) == pytest.approx(0.1)
    assert margin_schedule(5, 0.2, 1, 3) == 0.2
    assert margin_schedule(0, 0.2) == 0.2
    with pytest.raises(ValueError, match="expected embeddings"):
        AAMSoftmax(8, 3)(torch.randn(2, 7), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        AAMSoftmax(8, 1)
