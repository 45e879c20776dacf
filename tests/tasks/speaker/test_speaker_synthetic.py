"""Synthetic speakers: deterministic, the right pitch, and speakers that differ more than utterances do."""

import numpy as np

from sigattn.synthetic.speakers import SyntheticSpeakers, make_speaker_corpus


def test_deterministic_and_shapes():
    pop = SyntheticSpeakers(seed=3)
    a, b = pop.utterance(5, 0.75, seed=2), SyntheticSpeakers(seed=3).utterance(5, 0.75, seed=2)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (12000,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert not np.array_equal(a, pop.utterance(5, 0.75, seed=3))
    waves, labels = make_speaker_corpus([7, 9], 3, duration=(0.5, 1.0))
    assert labels.tolist() == [7, 7, 7, 9, 9, 9]
    assert all(8000 <= w.shape[0] <= 16000 for w in waves)


def test_pitch_follows_speaker_f0():
    pop = SyntheticSpeakers(seed=0)
    p = pop.speaker(4)
    w = pop.utterance(4, 2.0, seed=0, snr_db=None).astype(np.float64)
    # autocorrelation peak of the voiced signal in the 60-400 Hz lag range, an independent pitch estimate
    seg = w[4000:12000]
    ac = np.correlate(seg, seg, mode="full")[len(seg) - 1 :]
    lo, hi = 16000 // 400, 16000 // 60
    f0_est = 16000 / (lo + int(np.argmax(ac[lo:hi])))
    assert abs(np.log(f0_est / p.f0)) < np.log(1.4)


def test_speakers_differ_more_than_utterances():
    waves, labels = make_speaker_corpus(6, 3, duration=1.5, seed=1)
    spec = np.array([np.log(np.abs(np.fft.rfft(w, 4096)) ** 2 + 1e-6)[:1024] for w in waves])
    spec = np.array([np.convolve(s, np.ones(32) / 32, mode="same") for s in spec])
    d = np.linalg.norm(spec[:, None] - spec[None], axis=-1)
    same = labels[:, None] == labels[None]
    off = ~np.eye(len(labels), dtype=bool)
    assert d[same & off].mean() < d[~same].mean()
