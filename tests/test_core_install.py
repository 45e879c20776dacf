"""The core install (`pip install sigattn`, no extras) on the newest torch: checked by `make test-core`, which sets
SIGATTN_CORE_ENV=1 in a venv built from requirements/core.lock.txt. In the development environment these tests
check the lock files instead."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS_ONLY = ["torchaudio", "speechbrain", "mne", "moabb", "braindecode", "pandas", "matplotlib", "sklearn",
               "onnx", "onnxruntime", "tensorboard", "soundfile"]  # fmt: skip
CORE_ENV = os.environ.get("SIGATTN_CORE_ENV") == "1"


def _pins(lock: Path) -> dict[str, list[str]]:
    """name -> pinned versions (several where markers split by Python version) of a `uv pip compile` lock."""
    pins: dict[str, list[str]] = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins.setdefault(m.group(1).lower().replace("_", "-"), []).append(m.group(2))
    return pins


def test_locks_pin_every_package_once_per_python():
    for name in ("dev.lock.txt", "core.lock.txt"):
        text = (ROOT / "requirements" / name).read_text()
        reqs = [ln for ln in text.splitlines() if ln and not ln.startswith((" ", "#"))]
        assert reqs, name
        unpinned = [ln for ln in reqs if "==" not in ln]
        assert unpinned == [], f"{name}: lines without an exact version: {unpinned[:5]}"


def test_dev_lock_pins_a_torchaudio_that_loads_with_its_torch():
    pins = _pins(ROOT / "requirements" / "dev.lock.txt")
    assert pins["torch"] == ["2.11.0"] and pins["torchaudio"] == ["2.11.0"], (
        pins["torch"],
        pins["torchaudio"],
    )


def test_core_lock_has_no_extras():
    pins = _pins(ROOT / "requirements" / "core.lock.txt")
    leaked = [
        p for p in ("torchaudio", "speechbrain", "mne", "pandas", "matplotlib", "scikit-learn") if p in pins
    ]
    assert leaked == [], f"requirements/core.lock.txt pulls extras: {leaked}"
    assert {"torch", "numpy", "scipy", "numba", "llvmlite", "pyyaml", "tqdm"} <= set(pins)


@pytest.mark.skipif(not CORE_ENV, reason="checks the core venv of `make test-core` (SIGATTN_CORE_ENV=1)")
def test_core_env_has_only_core_packages_and_the_locked_torch():
    present = [m for m in EXTRAS_ONLY if importlib.util.find_spec(m) is not None]
    assert present == [], f"the core environment has extras installed: {present}"
    pins = _pins(ROOT / "requirements" / "core.lock.txt")
    torch_version = md.version("torch").split("+")[0]
    assert torch_version in pins["torch"], (torch_version, pins["torch"])


@pytest.mark.skipif(not CORE_ENV, reason="checks the core venv of `make test-core` (SIGATTN_CORE_ENV=1)")
def test_core_env_trains_and_computes_features(tmp_path):
    code = (
        "import numpy as np, sigattn.features as F\n"
        "from sigattn.cli import main\n"
        "y = F.fbank(np.random.default_rng(0).standard_normal(16000).astype(np.float32))\n"
        "assert y.shape == (98, 80), y.shape\n"
        f"rc = main(['train', {str(ROOT / 'recipes' / 'toy.yaml')!r}, 'trainer.epochs=1', "
        f"'--run-dir', {str(tmp_path / 'run')!r}])\n"
        "print('rc', rc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rc 0" in r.stdout
    assert (tmp_path / "run" / "metrics.json").is_file()
