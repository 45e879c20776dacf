"""Scoring: EER/minDCF against hand-worked cases and scikit-learn's ROC; AS-norm against a direct loop."""

import numpy as np
import pytest

from sigattn.tasks.speaker.scoring import (
    as_norm,
    cosine_scores,
    eer,
    error_rates,
    min_dcf,
    verification_metrics,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def test_eer_hand_cases():
    # sorted: 0.1N 0.4T 0.5N 0.9T -> after rejecting two trials FRR = FAR = 1/2
    assert eer([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0])[0] == pytest.approx(0.5)
    # sorted: 0.1N 0.2N 0.3T 0.5N 0.8T 0.9T -> FRR = FAR = 1/3 after rejecting three
    assert eer([0.9, 0.8, 0.3, 0.5, 0.2, 0.1], [1, 1, 1, 0, 0, 0])[0] == pytest.approx(1 / 3)
    # interpolated crossing: (FRR, FAR) goes (0, 1/3) -> (1/2, 1/3); the lines meet at 1/3
    assert eer([0.9, 0.3, 0.5, 0.1, 0.05], [1, 1, 0, 0, 0])[0] == pytest.approx(1 / 3)
    # perfectly separated and perfectly inverted
    assert eer([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])[0] == 0.0
    assert eer([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0])[0] == pytest.approx(1.0)


def test_eer_ties_are_one_threshold():
    # all scores equal: the only thresholds accept all (FAR 1) or reject all (FRR 1) -> EER 1/2
    assert eer([0.5] * 4, [1, 0, 1, 0])[0] == pytest.approx(0.5)
    frr, far, _ = error_rates([0.5, 0.5, 0.7], [1, 0, 1])
    np.testing.assert_allclose(frr, [0, 0.5, 1.0])
    np.testing.assert_allclose(far, [1, 0, 0])


def test_min_dcf_hand_case():
    s, y = [0.9, 0.8, 0.3, 0.5, 0.2, 0.1], [1, 1, 1, 0, 0, 0]
    # best threshold rejects everything up to 0.5: FRR 1/3, FAR 0 -> C = 0.01/3, normalised by 0.01
    assert min_dcf(s, y, 0.01)[0] == pytest.approx(1 / 3)
    # p = 0.5: C(t) = 0.5 FRR + 0.5 FAR, normalised by 0.5 -> min FRR + FAR = 1/3
    assert min_dcf(s, y, 0.5)[0] == pytest.approx(1 / 3)
    # c_fa = 10 at p = 0.05: options are (0, 1), (0, 2/3), (0, 1/3), (1/3, 1/3), (1/3, 0), (2/3, 0), (1, 0)
    costs = [10 * 0.95, 10 * 0.95 * 2 / 3, 10 * 0.95 / 3, 0.05 / 3 + 10 * 0.95 / 3, 0.05 / 3, 0.1 / 3, 0.05]
    assert min_dcf(s, y, 0.05, c_fa=10)[0] == pytest.approx(min(costs) / min(0.05, 10 * 0.95))


def _sklearn_eer(scores, labels):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr  # thresholds decrease along the curve: FNR falls from 1, FPR rises from 0
    k = int(np.argmax(fnr <= fpr))
    d0, d1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
    a = d0 / (d0 - d1)
    return fnr[k - 1] + a * (fnr[k] - fnr[k - 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_matches_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(500) < 0.2
    s = rng.normal(size=500) + 1.5 * y
    assert eer(s, y.astype(int))[0] == pytest.approx(_sklearn_eer(s, y.astype(int)), abs=1e-12)


def test_min_dcf_matches_brute_force():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    s = rng.normal(size=300) + y
    best = min(
        0.01 * np.mean(s[y == 1] < t) + 0.99 * np.mean(s[y == 0] >= t) for t in np.r_[np.sort(s), np.inf]
    )
    assert min_dcf(s, y, 0.01)[0] == pytest.approx(best / 0.01)


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="both target and non-target"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        eer([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="NaN"):
        eer([0.1, np.nan], [1, 0])
    with pytest.raises(ValueError, match="p_target"):
        min_dcf([0.1, 0.2], [1, 0], p_target=1.5)
    m = verification_metrics([0.9, 0.1], [1, 0])
    assert m["eer"] == 0.0 and set(m) >= {"min_dcf_p01", "min_dcf_p05"}


def test_cosine_scores_with_mean():
    e, t = np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([[2.0, 4.0], [0.0, 3.0]])
    np.testing.assert_allclose(cosine_scores(e, t), [1.0, 0.0], atol=1e-12)
    mean = np.array([1.0, 1.0])
    # (0, 1) . (1, 3) / sqrt(10); (2, -1) . (-1, 2) / 5
    np.testing.assert_allclose(cosine_scores(e, t, mean), [3 / np.sqrt(10), -4 / 5], atol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        cosine_scores(e, t[:1])


def test_as_norm_matches_direct_loop():
    rng = np.random.default_rng(0)
    e, t, c = rng.normal(size=(7, 6)), rng.normal(size=(7, 6)), rng.normal(size=(25, 6))
    mean = rng.normal(size=6) * 0.1
    k = 5
    raw = cosine_scores(e, t, mean)
    got = as_norm(raw, e, t, c, top_k=k, mean=mean)

    def cos(a, b):
        a, b = a - mean, b - mean
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    want = []
    for i in range(7):
        se = sorted((cos(e[i], cj) for cj in c), reverse=True)[:k]
        st = sorted((cos(t[i], cj) for cj in c), reverse=True)[:k]
        s = cos(e[i], t[i])
        want.append(0.5 * ((s - np.mean(se)) / np.std(se) + (s - np.mean(st)) / np.std(st)))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # top_k larger than the cohort uses the whole cohort
    np.testing.assert_allclose(as_norm(raw, e, t, c, top_k=1000), as_norm(raw, e, t, c, top_k=25))
    with pytest.raises(ValueError, match="cohort dim"):
        as_norm(raw, e, t, c[:, :3])
