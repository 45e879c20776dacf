"""Waveform and feature augmentation for speaker embeddings.

Additive noise at a random SNR from a noise folder (MUSAN-style, Snyder et al., "MUSAN", arXiv 1510.08484),
reverberation by convolution with room impulse responses from an RIR folder (Ko et al., ICASSP 2017),
speed perturbation by 0.9/1.1 treated as new speakers (Ko et al., Interspeech 2015; as in WeSpeaker), and
SpecAugment-style frequency/time masking (Park et al., Interspeech 2019). All take an explicit
``np.random.Generator`` so a crop's augmentation is reproducible from its seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["AddNoise", "AddReverb", "Compose", "SpecAugment", "mix_at_snr", "speed_perturb"]


def mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave + g * noise`` with ``g`` chosen so that ``10 log10(P_wave / P_{g noise}) = snr_db``.

    ``noise`` is tiled or cropped to the length of ``wave``.

    Example:
        >>> w = np.ones(100, dtype=np.float32); n = np.ones(10, dtype=np.float32)
        >>> float(mix_at_snr(w, n, 0.0)[0])
        2.0
    """
    if noise.shape[0] < wave.shape[0]:
        noise = np.tile(noise, -(-wave.shape[0] // noise.shape[0]))
    noise = noise[: wave.shape[0]]
    p_w, p_n = float(np.mean(wave.astype(np.float64) ** 2)), float(np.mean(noise.astype(np.float64) ** 2))
    if p_n == 0.0:
        return wave
    g = np.sqrt(p_w / (p_n * 10.0 ** (snr_db / 10.0)))
    return (wave + g * noise).astype(np.float32)


def _list_audio(folder: str | Path, what: str) -> list[str]:
    from .manifests import AUDIO_EXTENSIONS

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {folder}")
    files = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ValueError(f"{what} folder {folder} contains no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return files


class AddNoise:
    """Add a random noise clip (from files or arrays) at an SNR drawn uniformly from ``snr_range`` dB.

    Args:
        noise: a folder of audio files, or a list of 1-D arrays.
        snr_range: ``(low, high)`` in dB (MUSAN recipes: noise 0-15, music 5-15, babble 13-20).
        p: probability of applying it to a given crop.
    """

    def __init__(
        self,
        noise: str | Path | list,
        snr_range: tuple[float, float] = (0.0, 15.0),
        p: float = 1.0,
        sample_rate: int = 16000,
    ) -> None:
        self.sources = _list_audio(noise, "noise") if isinstance(noise, (str, Path)) else list(noise)
        if not self.sources:
            raise ValueError("AddNoise: empty noise list")
        self.snr_range, self.p, self.sample_rate = snr_range, p, sample_rate

    def _noise(self, k: int) -> np.ndarray:
        from .audio import load_audio

        s = self.sources[k]
        return load_audio(s, self.sample_rate) if isinstance(s, str) else np.asarray(s, dtype=np.float32)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return wave
        noise = self._noise(int(rng.integers(len(self.sources))))
        if noise.shape[0] > wave.shape[0]:
            start = int(rng.integers(noise.shape[0] - wave.shape[0] + 1))
            noise = noise[start : start + wave.shape[0]]
        return mix_at_snr(wave, noise, float(rng.uniform(*self.snr_range)))


class AddReverb:
    """Convolve with a random room impulse response (files or arrays), aligned on its direct-path peak,
    output rescaled to the input's power (as Kaldi/WeSpeaker reverberation)."""

    def __init__(self, rirs, p: float = 1.0, sample_rate: int = 16000) -> None:
        self.sources = _list_audio(rirs, "RIR") if isinstance(rirs, (str, Path)) else list(rirs)
        if not self.sources:
            raise ValueError("AddReverb: empty RIR list")
        self.p, self.sample_rate = p, sample_rate

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import fftconvolve

        from .audio import load_audio

        if rng.random() >= self.p:
            return wave
        s = self.sources[int(rng.integers(len(self.sources)))]
        rir = load_audio(s, self.sample_rate) if isinstance(s, str) else np.asarray(s, dtype=np.float32)
        rir = rir / (np.linalg.norm(rir) + 1e-12)
        peak = int(np.argmax(np.abs(rir)))
        out = fftconvolve(wave, rir)[peak : peak + wave.shape[0]]
        scale = np.sqrt(
            np.mean(wave.astype(np.float64) ** 2) / (np.mean(out.astype(np.float64) ** 2) + 1e-20)
        )
        return (out * scale).astype(np.float32)


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster (pitch and formants shift too): polyphase resampling to
    ``len / factor`` samples. sigattn uses 0.9 and 1.1 and treats each as new speakers.

    Example:
        >>> speed_perturb(np.zeros(1100, dtype=np.float32), 1.1).shape
        (1000,)
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    if factor <= 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    if factor == 1.0:
        return wave
    fr = Fraction(factor).limit_denominator(100)
    return resample_poly(wave, fr.denominator, fr.numerator).astype(np.float32)


class SpecAugment:
    """Zero ``n_freq`` random bands of up to ``max_freq`` bins and ``n_time`` spans of up to ``max_time``
    frames of ``(bins, frames)`` features (mean-normalised features, so zero is the mean)."""

    def __init__(
        self, n_freq: int = 1, max_freq: int = 8, n_time: int = 1, max_time: int = 10, p: float = 1.0
    ) -> None:
        self.n_freq, self.max_freq, self.n_time, self.max_time, self.p = n_freq, max_freq, n_time, max_time, p

    def __call__(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return feats
        feats = feats.copy()
        bins, frames = feats.shape
        for _ in range(self.n_freq):
            w = int(rng.integers(0, self.max_freq + 1))
            f0 = int(rng.integers(0, max(1, bins - w)))
            feats[f0 : f0 + w] = 0.0
        for _ in range(self.n_time):
            w = int(rng.integers(0, min(self.max_time, frames) + 1))
            t0 = int(rng.integers(0, max(1, frames - w)))
            feats[:, t0 : t0 + w] = 0.0
        return feats


class Compose:
    """Apply waveform augmentations in order: ``Compose([AddReverb(...), AddNoise(...)])(wave, rng)``."""

    def __init__(self, transforms) -> None:
        self.transforms = list(transforms)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            wave = t(wave, rng)
        return wave
