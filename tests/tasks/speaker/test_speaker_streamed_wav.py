"""WAV files written by a program that could not seek back (SoX to a pipe) carry a placeholder data size; they
are complete and must load without a truncation error."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from sigattn.tasks.speaker.audio import load_audio, wav_declared_frames


def _with_data_size(path, size: int) -> None:
    raw = bytearray(path.read_bytes())
    i = raw.index(b"data")
    raw[i + 4 : i + 8] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_sox_pipe_placeholder_size_is_not_truncation(tmp_path):
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    path = tmp_path / "piped.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    _with_data_size(path, 0x7FFFF000)  # what `sox in.flac -t wav - > piped.wav` writes
    assert wav_declared_frames(path) is None  # unknown, not 1,073,739,776 frames
    y = load_audio(path)
    np.testing.assert_allclose(y, x, atol=1 / 32768)
