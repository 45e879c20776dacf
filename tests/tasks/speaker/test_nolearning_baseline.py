"""The no-learning speaker baseline (fbank mean+std per utterance, cosine) against numpy by hand."""

from itertools import combinations

import numpy as np
import pytest

from sigattn.synthetic.speakers import make_speaker_corpus
from sigattn.tasks.speaker.baselines import fbank_stats, fbank_stats_embeddings, nolearning_scores
from sigattn.tasks.speaker.data import extract_fbank
from sigattn.tasks.speaker.scoring import as_norm, cosine_scores
from sigattn.tasks.speaker.task import SpeakerParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _by_hand(waves) -> np.ndarray:
    """Mean then population std over frames of each waveform's fbank (no CMN), one explicit loop per bin."""
    rows = []
    for w in waves:
        f = extract_fbank(w, 16000, 80, cmn=False).astype(np.float64)  # (bins, frames)
        n = f.shape[1]
        mean = np.array([sum(f[b]) / n for b in range(f.shape[0])])
        std = np.array([np.sqrt(sum((f[b] - mean[b]) ** 2) / n) for b in range(f.shape[0])])
        rows.append(np.concatenate([mean, std]))
    return np.stack(rows)


def test_fbank_mean_std_vector_and_mean_subtracted_cosine_by_hand():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    waves = [
        (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32),
        (0.2 * np.sign(np.sin(2 * np.pi * 130 * t)) + 0.02 * rng.standard_normal(t.size)).astype(np.float32),
    ]
    expected = _by_hand(waves)
    assert expected.shape == (2, 160)
    feats = [extract_fbank(w, 16000, 80, cmn=False) for w in waves]
    np.testing.assert_allclose(fbank_stats(feats[0]), expected[0], rtol=1e-10, atol=1e-9)
    emb = fbank_stats_embeddings(feats)
    np.testing.assert_allclose(emb, expected, rtol=1e-10, atol=1e-9)

    x, y = expected
    plain = x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
    assert cosine_scores(emb[:1], emb[1:])[0] == pytest.approx(plain, rel=1e-12)
    m = 0.5 * (x + y) + 0.1 * rng.standard_normal(160)  # any mean vector
    xm, ym = x - m, y - m
    sub = xm @ ym / (np.linalg.norm(xm) * np.linalg.norm(ym))
    assert cosine_scores(emb[:1], emb[1:], m)[0] == pytest.approx(sub, rel=1e-12)
    assert abs(sub - plain) > 1e-3  # the mean matters: the two scores are different numbers


def test_fbank_stats_refuses_non_2d_features():
    with pytest.raises(ValueError, match="bins, frames"):
        fbank_stats(np.zeros(5))


def test_nolearning_scores_on_a_tiny_synthetic_task_match_a_hand_computation():
    p = SpeakerParams(synth_train_speakers=5, synth_test_speakers=3, val_speakers=2, synth_utts=2,
                      synth_seconds=0.5, cohort_size=3, asnorm_top_k=2, cmn=True)  # fmt: skip
    s = nolearning_scores(p, seed=0)
    # the test set: speakers 7, 8, 9 of the synthetic corpus (after the 5 + 2 of the pool), all pairs
    t_waves, t_labels = make_speaker_corpus([7, 8, 9], 2, 0.5, 0, 16000)
    emb = _by_hand(t_waves)
    i, j = np.triu_indices(len(t_waves), k=1)
    np.testing.assert_array_equal(s["labels"], (t_labels[i] == t_labels[j]).astype(int))
    np.testing.assert_allclose(s["plain"], cosine_scores(emb[i], emb[j]), rtol=1e-9, atol=1e-12)
    # the training utterances: the pool less the two validation speakers' (which of the 7 those are is the
    # task's choice for the seed; every choice is tried and exactly one reproduces the scores)
    pool, labels = make_speaker_corpus(7, 2, 0.5, 0, 16000)
    pool_emb = _by_hand(pool)
    matches = []
    for a in range(7):
        for b in range(a + 1, 7):
            keep = ~np.isin(labels, [a, b])
            mean = pool_emb[keep].mean(axis=0)
            if np.allclose(s["mean_subtracted"], cosine_scores(emb[i], emb[j], mean), rtol=1e-9, atol=1e-12):
                matches.append((a, b, mean, keep))
    assert len(matches) == 1
    _, _, mean, keep = matches[0]
    # AS-norm of the mean-subtracted scores against 3 of the 10 training utterances (the task's cohort)
    train_emb = pool_emb[keep]
    hits = [
        c
        for c in combinations(range(len(train_emb)), 3)
        if np.allclose(
            s["asnorm"], as_norm(s["mean_subtracted"], emb[i], emb[j], train_emb[list(c)], 2, mean)
        )
    ]
    assert len(hits) == 1
