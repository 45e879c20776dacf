"""Speaker-verification datasets: training crops, whole utterances and precomputed-feature crops.

The torch ``Dataset`` classes and the per-item steps they share (minimum-length check, crop or pad, Kaldi fbank
with CMN). Sources are file paths (read by :func:`~sigattn.tasks.speaker.audio.load_audio`) or in-memory
waveforms. Manifests and trial lists live in :mod:`sigattn.tasks.speaker.manifests`; their names (and
``load_audio``) are re-exported here so that ``from sigattn.tasks.speaker.data import ...`` keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sigattn.errors import DataError

from . import manifests
from .audio import load_audio
from .manifests import *  # noqa: F403 -- the list-file readers, re-exported for compatibility

__all__ = [
    "CropDataset",
    "FeatureCropDataset",
    "UtteranceDataset",
    "check_min_seconds",
    "crop_or_pad",
    "extract_fbank",
    "load_audio",  # re-exported from .audio for compatibility
]
__all__ += manifests.__all__


def check_min_seconds(wave: np.ndarray, sample_rate: int, min_seconds: float, name: str) -> None:
    """Refuse a clip shorter than ``min_seconds``, or than one 25 ms fbank frame whatever ``min_seconds`` is.

    Evaluation (:class:`UtteranceDataset`) and :func:`~sigattn.tasks.speaker.inference.embed` both call this
    and then embed the clip's own frames, never padded or tiled, so they agree on every clip they accept and
    refuse the same clips with the same message (naming ``name``).
    """
    n = wave.shape[-1]
    if n < min_seconds * sample_rate:
        raise DataError(f"{name}: {n / sample_rate:.3f} s is shorter than min_seconds={min_seconds}")
    if n < int(sample_rate * 0.025):
        raise DataError(f"{name}: {n / sample_rate:.3f} s is shorter than one 25 ms fbank frame")


def crop_or_pad(
    wave: np.ndarray,
    n: int,
    rng: np.random.Generator | None = None,
    short: str = "repeat",
    name: str = "clip",
) -> np.ndarray:
    """A crop of exactly ``n`` samples: random start when ``rng`` is given, else centred.

    Args:
        short: what to do with clips shorter than ``n``: ``"repeat"`` (tile the clip, as WeSpeaker and
            voxceleb_trainer do), ``"pad"`` (zeros at the end) or ``"reject"`` (``ValueError`` naming ``name``).
    """
    m = wave.shape[-1]
    if m < n:
        if short == "reject":
            raise DataError(f"{name}: {m} samples, shorter than the {n} required (short='reject')")
        if short == "pad":
            return np.pad(wave, (0, n - m))
        if short != "repeat":
            raise ValueError(f"short must be 'repeat', 'pad' or 'reject', got {short!r}")
        return np.tile(wave, -(-n // m))[:n]
    start = int(rng.integers(0, m - n + 1)) if rng is not None else (m - n) // 2
    return wave[start : start + n]


def extract_fbank(
    wave: np.ndarray,
    sample_rate: int = 16000,
    num_mel_bins: int = 80,
    dither: float = 0.0,
    seed=None,
    cmn: bool = True,
):
    """Kaldi fbank ``(bins, frames)`` float32 of a waveform in [-1, 1] (scaled by 2^15 like WeSpeaker), with
    sentence mean normalisation (CMN, no variance normalisation) unless ``cmn=False``."""
    from sigattn.features import fbank

    x = np.asarray(wave, dtype=np.float32) * 32768.0
    feats = fbank(x, sample_rate=sample_rate, num_mel_bins=num_mel_bins, dither=dither, seed=seed).T
    if cmn:
        feats = feats - feats.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(feats, dtype=np.float32)


class CropDataset(Dataset):
    """Training crops: each item is ``(feats (bins, frames), label)`` from a random crop of one utterance.

    Args:
        sources: list of file paths or 1-D float arrays (in-memory waveforms).
        labels: integer class per source.
        crop_seconds: crop length.
        sample_rate: expected rate (files at other rates are resampled).
        augment: optional callable ``(wave, rng) -> wave`` (see ``sigattn.tasks.speaker.augment``).
        spec_augment: optional callable ``(feats, rng) -> feats``.
        short: policy for clips shorter than the crop (:func:`crop_or_pad`).
        epoch_size: items per epoch (default: one crop per source).
        seed: base seed; item ``i`` of epoch ``e`` uses a generator seeded by ``(seed, e, i)``.
        num_mel_bins: fbank bins.
        dither: Kaldi dither.
        cmn: sentence mean normalisation.
        resample: resample files at other rates (``False``: reject them with an error naming the file).
        truncated: ``"error"`` or ``"warn"`` for a file holding fewer frames than its header declares
            (:func:`load_audio`).
    """

    def __init__(
        self,
        sources: list,
        labels: list[int] | np.ndarray,
        crop_seconds: float = 2.0,
        sample_rate: int = 16000,
        augment: Callable | None = None,
        spec_augment: Callable | None = None,
        short: str = "repeat",
        epoch_size: int | None = None,
        num_mel_bins: int = 80,
        dither: float = 0.0,
        seed: int = 0,
        cmn: bool = True,
        resample: bool = True,
        truncated: str = "error",
    ) -> None:
        if len(sources) != len(labels):
            raise ValueError(f"CropDataset: {len(sources)} sources but {len(labels)} labels")
        if len(sources) == 0:
            raise ValueError("CropDataset: no training utterances")
        self.sources, self.labels = list(sources), np.asarray(labels, dtype=np.int64)
        self.crop = int(round(crop_seconds * sample_rate))
        self.sample_rate, self.augment, self.spec_augment = sample_rate, augment, spec_augment
        self.short, self.num_mel_bins, self.dither, self.seed = short, num_mel_bins, dither, seed
        self.epoch_size = int(epoch_size or len(self.sources))
        self.cmn, self.resample, self.truncated = cmn, resample, truncated
        self.epoch = 0
        if short == "reject":
            self._reject_short_up_front()

    def _reject_short_up_front(self) -> None:
        """``short="reject"``: fail at construction, naming the first clip shorter than a crop, rather than when
        a worker first draws it (file lengths come from the headers, at the model rate after resampling)."""
        import soundfile as sf

        too_short = []
        for j, s in enumerate(self.sources):
            if isinstance(s, (str, Path)):
                if not Path(s).is_file():
                    raise FileNotFoundError(f"audio file not found: {s}")
                try:
                    info = sf.info(str(s))
                except Exception as e:  # damaged header: same wording as load_audio
                    raise DataError(f"cannot read audio file {s}: {e}") from e
                n = -(
                    -info.frames * self.sample_rate // int(info.samplerate)
                )  # resample_poly's output length
            else:
                n = np.asarray(s).shape[-1]
            if n < self.crop:
                too_short.append((j, n))
        if too_short:
            j, n = too_short[0]
            name = str(self.sources[j]) if isinstance(self.sources[j], (str, Path)) else f"source {j}"
            raise DataError(
                f"{len(too_short)} training clips are shorter than the {self.crop}-sample crop (short='reject'), "
                f"e.g. {name} ({n} samples)"
            )

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (called by the engine when available)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def _wave(self, j: int) -> np.ndarray:
        s = self.sources[j]
        return (
            load_audio(s, self.sample_rate, self.resample, self.truncated)
            if isinstance(s, (str, Path))
            else np.asarray(s, dtype=np.float32)
        )

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        j = (
            i % len(self.sources)
            if self.epoch_size == len(self.sources)
            else int(rng.integers(len(self.sources)))
        )
        name = str(self.sources[j]) if isinstance(self.sources[j], (str, Path)) else f"source {j}"
        wave = crop_or_pad(self._wave(j), self.crop, rng, self.short, name)
        if self.augment is not None:
            wave = self.augment(wave, rng)
        feats = extract_fbank(
            wave, self.sample_rate, self.num_mel_bins, self.dither, int(rng.integers(2**31))
        )
        if self.spec_augment is not None:
            feats = self.spec_augment(feats, rng)
        return torch.from_numpy(feats), int(self.labels[j])


class UtteranceDataset(Dataset):
    """Whole utterances for embedding extraction: item ``i`` is ``{"feats": (bins, frames), "index": i}``.

    Features are computed once and cached (evaluation sets are small; pass ``cache=False`` otherwise).
    ``max_seconds`` caps very long files (centre crop), as embeddings gain little past ~30 s. A clip shorter
    than ``min_seconds`` is a ``ValueError`` naming it (:func:`check_min_seconds`, the same rule and message as
    ``embed``); shorter clips are never padded or tiled, so a clip's features are its own frames.
    ``truncated``: ``"error"`` or ``"warn"`` for truncated files (:func:`load_audio`).
    """

    def __init__(self, sources, sample_rate=16000, num_mel_bins=80, max_seconds=None, min_seconds=0.1,
                 cache=True, cmn=True, resample=True, truncated="error") -> None:  # fmt: skip
        self.sources, self.sample_rate, self.num_mel_bins = list(sources), sample_rate, num_mel_bins
        self.max_samples = None if max_seconds is None else int(max_seconds * sample_rate)
        self.min_seconds = min_seconds
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None
        self.cmn, self.resample, self.truncated = cmn, resample, truncated

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int):
        if self._cache is not None and i in self._cache:
            return {"feats": self._cache[i], "index": i}
        s = self.sources[i]
        wave = (
            load_audio(s, self.sample_rate, self.resample, self.truncated)
            if isinstance(s, (str, Path))
            else np.asarray(s, dtype=np.float32)
        )
        name = str(s) if isinstance(s, (str, Path)) else f"item {i}"
        check_min_seconds(wave, self.sample_rate, self.min_seconds, name)
        if self.max_samples is not None and wave.shape[0] > self.max_samples:
            wave = crop_or_pad(wave, self.max_samples)
        feats = torch.from_numpy(extract_fbank(wave, self.sample_rate, self.num_mel_bins, cmn=self.cmn))
        if self._cache is not None:
            self._cache[i] = feats
        return {"feats": feats, "index": i}


class FeatureCropDataset(Dataset):
    """Random ``crop_frames`` crops of precomputed ``(bins, frames)`` features (fast path without waveform
    augmentation). Items ``(feats, label)``; short utterances are tiled."""

    def __init__(
        self, feats: list[torch.Tensor], labels, crop_frames: int, epoch_size: int, spec_augment=None, seed=0
    ):
        self.feats, self.labels = feats, np.asarray(labels, dtype=np.int64)
        self.crop, self.epoch_size, self.spec_augment, self.seed = crop_frames, epoch_size, spec_augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        j = int(rng.integers(len(self.feats))) if self.epoch_size != len(self.feats) else i
        f = self.feats[j]
        if f.shape[1] < self.crop:
            f = f.repeat(1, -(-self.crop // f.shape[1]))
        t0 = int(rng.integers(0, f.shape[1] - self.crop + 1))
        out = f[:, t0 : t0 + self.crop]
        if self.spec_augment is not None:
            out = torch.from_numpy(self.spec_augment(out.numpy(), rng))
        return out, int(self.labels[j])
