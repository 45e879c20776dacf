"""Shared fixtures for the features tests: short slices of real speech (skipped when the data are absent)."""

from __future__ import annotations

import numpy as np
import pytest

from sigattn.data_paths import shared_data_dir


def speech_slices(n_files: int = 3, seconds: float = 2.0) -> list[np.ndarray]:
    root = shared_data_dir()
    if root is None or not (root / "speech").is_dir():
        pytest.skip("../shared/data/speech is absent (set SIGATTN_DATA_DIR)")
    import soundfile as sf

    files = sorted((root / "speech" / "librispeech_test_other").rglob("*.flac"))[:n_files]
    out = []
    for f in files:
        x, sr = sf.read(str(f), dtype="float32", frames=int(seconds * 16000), start=8000)
        assert sr == 16000
        out.append(x)
    return out


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    return speech_slices()
