"""Synthetic speakers from a source-filter model, for tests, the demo and benchmarks (NumPy only).

Each speaker has a pitch range, a vocal-tract length (formant scaling, Fant 1960; Lee et al. 1999), a
spectral tilt, a breathiness level and a personal "accent" (relative offsets of F1, F2 and F3). An
utterance is a random sequence of phones: voiced vowels (a glottal pulse train at a smoothly varying f0 shaped
by the formant envelope) and unvoiced fricatives (band-limited noise), with short pauses. Identity lives in the
speaker parameters, content in the phone sequence, so a speaker embedding must ignore what is said.

References:
    Fant, "Acoustic Theory of Speech Production", 1960 (source-filter model);
    Peterson & Barney, "Control methods used in a study of the vowels", JASA 1952 (formant table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["VoiceParams", "SyntheticSpeakers", "make_speaker_corpus"]

# Peterson & Barney (1952) average adult male formants F1-F3 (Hz) of ten English vowels.
_VOWELS = np.array(
    [
        [270, 2290, 3010],
        [390, 1990, 2550],
        [530, 1840, 2480],
        [660, 1720, 2410],
        [730, 1090, 2440],
        [570, 840, 2410],
        [440, 1020, 2240],
        [300, 870, 2240],
        [640, 1190, 2390],
        [490, 1350, 1690],
    ],
    dtype=np.float64,
)
# Fricative noise bands (centre Hz, bandwidth Hz): s, sh, f, h.
_FRICATIVES = np.array([[6000, 2500], [3000, 1500], [4500, 4000], [1500, 2000]], dtype=np.float64)


@dataclass(frozen=True)
class VoiceParams:
    """Identity of one synthetic speaker.

    Attributes:
        f0: median pitch (Hz). f0_range: pitch excursion as a fraction of ``f0``.
        vtl: vocal-tract length factor (formants are divided by it; 1.0 = adult male average).
        tilt: source spectral tilt in dB per octave (negative). breath: noise-to-harmonics ratio.
        accent: ``(3,)`` relative offsets of F1-F3 (every vowel; utterances add 3 % jitter per phone). bandwidth: formant bandwidth factor.
    """

    f0: float
    f0_range: float
    vtl: float
    tilt: float
    breath: float
    accent: np.ndarray
    bandwidth: float


class SyntheticSpeakers:
    """A reproducible population of synthetic speakers; speaker ``i`` is the same for a given ``seed``.

    Args:
        seed: population seed. Speakers ``0..n-1`` and ``n..m`` are disjoint sets, so held-out speakers are
            simply other indices.
        sample_rate: output sample rate in Hz.

    Example:
        >>> pop = SyntheticSpeakers(seed=0)
        >>> wave = pop.utterance(3, duration=1.0, seed=1)
        >>> wave.shape, wave.dtype
        ((16000,), dtype('float32'))
    """

    def __init__(self, seed: int = 0, sample_rate: int = 16000) -> None:
        if sample_rate < 8000:
            raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}")
        self.seed = int(seed)
        self.sample_rate = int(sample_rate)

    def speaker(self, index: int) -> VoiceParams:
        """Parameters of speaker ``index`` (deterministic)."""
        if index < 0:
            raise ValueError(f"speaker index must be >= 0, got {index}")
        rng = np.random.default_rng([self.seed, 7919, int(index)])
        female = rng.random() < 0.5
        f0 = float(np.exp(rng.normal(np.log(210.0 if female else 115.0), 0.3)))
        vtl = float(np.exp(rng.normal(np.log(0.85 if female else 1.0), 0.15)))
        return VoiceParams(
            f0=f0,
            f0_range=float(rng.uniform(0.04, 0.15)),
            vtl=vtl,
            tilt=float(rng.uniform(-15.0, -6.0)),
            breath=float(rng.uniform(0.0, 0.25)),
            accent=rng.normal(0.0, 0.08, size=3),
            bandwidth=float(rng.uniform(0.7, 1.5)),
        )

    def _envelope(self, freqs: np.ndarray, formants: np.ndarray, p: VoiceParams) -> np.ndarray:
        """Magnitude of a cascade of formant resonances plus source tilt at ``freqs`` (Hz)."""
        env = np.ones_like(freqs)
        for f in formants:
            bw = p.bandwidth * (50.0 + 0.06 * f)
            env *= f**2 / np.sqrt((f**2 - freqs**2) ** 2 + (bw * freqs) ** 2 + 1e-9)
        octaves = np.log2(np.maximum(freqs, 50.0) / 100.0)
        return env * 10.0 ** (p.tilt * octaves / 20.0)

    def utterance(
        self, speaker: int, duration: float = 2.0, seed: int = 0, snr_db: float | None = 30.0
    ) -> np.ndarray:
        """One utterance of ``speaker``: a float32 waveform of ``round(duration * sample_rate)`` samples.

        Args:
            speaker: speaker index. duration: seconds. seed: utterance seed (content, pitch contour, noise).
            snr_db: white noise added at this SNR; ``None`` for none.
        """
        if duration <= 0:
            raise ValueError(f"duration must be > 0 s, got {duration}")
        p = self.speaker(speaker)
        sr = self.sample_rate
        rng = np.random.default_rng([self.seed, 104729, int(speaker), int(seed)])
        n = int(round(duration * sr))
        out = np.zeros(n)
        # smooth pitch contour: a few random knots, linearly interpolated
        knots = max(2, int(duration * 3) + 1)
        contour = p.f0 * np.exp(p.f0_range * rng.uniform(-1, 1, size=knots))
        f0 = np.interp(np.arange(n), np.linspace(0, n - 1, knots), contour)
        cycles = np.cumsum(f0) / sr
        pulses = np.diff(np.floor(cycles), prepend=0.0)  # one unit impulse per glottal period
        pos = 0
        while pos < n:
            kind = rng.random()
            length = int(sr * rng.uniform(0.06, 0.2))
            seg = slice(pos, min(n, pos + length))
            m = seg.stop - seg.start
            if kind < 0.7:  # vowel: glottal pulse train filtered by the formant envelope (FFT, per segment)
                v = rng.integers(len(_VOWELS))
                formants = _VOWELS[v] * (1.0 + p.accent + rng.normal(0.0, 0.03, size=3)) / p.vtl
                spec = np.fft.rfft(pulses[seg])
                spec *= self._envelope(np.fft.rfftfreq(m, 1.0 / sr), formants, p)
                wave = np.fft.irfft(spec, n=m)
                wave /= np.sqrt(np.mean(wave**2)) + 1e-9
                wave += p.breath * rng.standard_normal(m)
                ramp = np.minimum(1.0, np.minimum(np.arange(m), np.arange(m)[::-1]) / (0.01 * sr))
                out[seg] += wave * ramp
            elif kind < 0.9:  # fricative: noise shaped in the frequency domain
                c, bw = _FRICATIVES[rng.integers(len(_FRICATIVES))]
                c = min(c / p.vtl, 0.45 * sr)
                spec = np.fft.rfft(rng.standard_normal(m))
                fr = np.fft.rfftfreq(m, 1.0 / sr)
                spec *= np.exp(-0.5 * ((fr - c) / (bw / 2)) ** 2)
                wave = np.fft.irfft(spec, n=m)
                out[seg] += 0.3 * wave / (np.sqrt(np.mean(wave**2)) + 1e-9)
            pos += length  # kind >= 0.9: a pause
        out /= np.sqrt(np.mean(out**2)) + 1e-9
        if snr_db is not None:
            out += rng.standard_normal(n) * 10.0 ** (-snr_db / 20.0)
        return (0.1 * out).astype(np.float32)


def make_speaker_corpus(
    speakers,
    utts_per_speaker: int,
    duration: float | tuple[float, float] = 2.0,
    seed: int = 0,
    sample_rate: int = 16000,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Waveforms and speaker labels for ``speakers`` (an int ``n`` = speakers ``0..n-1``, or an index list).

    Args:
        duration: seconds per utterance, or a ``(min, max)`` range drawn uniformly per utterance.

    Returns:
        ``(waves, labels)``: a list of float32 1-D arrays and an int64 array of speaker indices.

    Example:
        >>> waves, labels = make_speaker_corpus(3, 2, duration=0.5)
        >>> len(waves), labels.tolist()
        (6, [0, 0, 1, 1, 2, 2])
    """
    ids = list(range(speakers)) if isinstance(speakers, int) else [int(s) for s in speakers]
    if utts_per_speaker < 1:
        raise ValueError(f"utts_per_speaker must be >= 1, got {utts_per_speaker}")
    pop = SyntheticSpeakers(seed=seed, sample_rate=sample_rate)
    rng = np.random.default_rng([seed, 31])
    waves, labels = [], []
    for s in ids:
        for u in range(utts_per_speaker):
            d = float(rng.uniform(*duration)) if isinstance(duration, tuple) else float(duration)
            waves.append(pop.utterance(s, d, seed=u))
            labels.append(s)
    return waves, np.asarray(labels, dtype=np.int64)
