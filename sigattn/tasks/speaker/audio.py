"""Reading audio files for speaker verification: mono float32 at the model rate, with every damage named.

A file that holds fewer frames than its header declares (a download or copy cut short) is detected, not
loaded as a shorter clip: for WAV the declared length is the ``data`` chunk size over the block alignment,
which libsndfile silently clips to the bytes present (its ``frames`` is what is there, not what was
declared); for FLAC it is STREAMINFO's total sample count, and a truncated stream stops decoding early.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from sigattn.errors import DataError

__all__ = ["TRUNCATED_POLICIES", "load_audio", "wav_declared_frames"]

TRUNCATED_POLICIES = ("error", "warn")


def wav_declared_frames(path: str | Path) -> int | None:
    """Frames a RIFF/WAVE file's ``data`` chunk declares (``size // block_align``), or ``None`` when the
    file is not RIFF/WAVE or declares no usable size (0 or 0xFFFFFFFF, as streaming writers leave it)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"fmt ":
                body = f.read(min(size, 16))
                if len(body) < 14:
                    return None
                block_align = int.from_bytes(body[12:14], "little")
                f.seek(size - len(body) + (size & 1), 1)
            elif cid == b"data":
                # sizes a streaming writer leaves when it cannot seek back: 0, 0xFFFFFFFF, and SoX's
                # 0x7FFFF000 (e.g. `sox ... -t wav - > f.wav`, common in Kaldi-style data preparation)
                if not block_align or size in (0, 0xFFFFFFFF, 0x7FFFF000):
                    return None
                return size // block_align
            else:
                f.seek(size + (size & 1), 1)  # chunks are word-aligned


def _read_prefix(path: Path, block: int = 256) -> np.ndarray:
    """The frames a damaged file decodes before its first error, read block by block (libsndfile's FLAC
    reader gives up at a block boundary, so small blocks recover more of a cut file)."""
    import soundfile as sf

    parts = []
    with sf.SoundFile(str(path)) as f:
        try:
            while True:
                b = f.read(block, dtype="float32", always_2d=True)
                if b.shape[0] == 0:
                    break
                parts.append(b)
        except Exception:  # the decoder's first error ends the readable prefix
            pass
        channels = f.channels
    return np.concatenate(parts) if parts else np.zeros((0, channels), dtype=np.float32)


def load_audio(path: str | Path, sample_rate: int = 16000, resample: bool = True,
               truncated: str = "error") -> np.ndarray:  # fmt: skip
    """Read an audio file as mono float32 at ``sample_rate`` (multi-channel files are averaged).

    Args:
        resample: resample other rates with a polyphase filter; ``False`` rejects them with a ``ValueError``.
        truncated: a file holding fewer frames than its header declares is a ``ValueError`` (``"error"``), or
            a ``UserWarning`` naming the file and what was lost, with the frames present returned (``"warn"``).

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ValueError: the file is unreadable, empty, truncated, corrupt or at another rate with
            ``resample=False``.
    """
    import soundfile as sf

    if truncated not in TRUNCATED_POLICIES:
        raise ValueError(f"truncated must be 'error' or 'warn', got {truncated!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        with sf.SoundFile(str(path)) as f:
            sr, declared, fmt = int(f.samplerate), int(f.frames), f.format
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError depending on the damage
        raise DataError(f"cannot read audio file {path}: {e}") from e
    if fmt in ("WAV", "WAVEX"):  # libsndfile reports the frames present; the header may declare more
        declared = wav_declared_frames(path) or declared
    decode_error = None
    try:
        wave, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        wave = _read_prefix(path)
        if declared <= 0 or wave.shape[0] >= declared:  # damage other than a missing end
            raise DataError(f"cannot read audio file {path}: {e}") from e
        decode_error = str(e).strip()
    if declared > 0 and wave.shape[0] < declared:
        n, lost = wave.shape[0], declared - wave.shape[0]
        held = (
            f"file holds {n} ({n / sr:.3f} s)"
            if decode_error is None
            else f"decoding stops after {n} ({n / sr:.3f} s) with {decode_error!r}"
        )
        msg = (
            f"{path}: truncated: header declares {declared} frames ({declared / sr:.3f} s), {held}; "
            f"{lost} frames ({lost / sr:.3f} s) lost"
        )
        if truncated == "error":
            raise DataError(msg + " (truncated='warn' loads the frames present)")
        warnings.warn(msg, UserWarning, stacklevel=2)
    if wave.shape[0] == 0:
        raise DataError(f"audio file {path} has no samples")
    wave = wave.mean(axis=1)
    if not np.all(np.isfinite(wave)):
        raise DataError(f"audio file {path} contains NaN/Inf samples")
    if sr != sample_rate:
        if not resample:
            raise DataError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz (resample=False)")
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sr), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, int(sr) // g).astype(np.float32)
    return np.ascontiguousarray(wave, dtype=np.float32)
