"""Bad data reaches the user of `sigattn train` as one line and exit code 2, also when a DataLoader worker
process found it; INFO lines of sigattn (the chosen split) reach the console."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sigattn.cli import _one_line, main
from sigattn.errors import DataError


def _hourly_csv(path: Path, n: int, drop=()) -> Path:
    keep = [i for i in range(n) if i not in set(drop)]
    rng = np.random.default_rng(0)
    lines = ["date,a,OT"] + [
        f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00,{rng.standard_normal():.4f},{rng.standard_normal():.4f}"
        for i in keep
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _forecast_recipe(tmp_path: Path, data: Path) -> Path:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"task: forecast\nparams: {{data: {str(data)!r}, seq_len: 24, pred_len: 8}}\n"
        "model: {name: dlinear, channel_strategy: ci}\ntrainer: {epochs: 1, batch_size: 16, device: cpu, amp: false}\n"
    )
    return recipe


def test_gappy_csv_through_the_cli_is_one_line_and_exit_2(tmp_path, capsys):
    data = _hourly_csv(tmp_path / "gappy.csv", 400, drop=range(100, 200))
    rc = main(["train", str(_forecast_recipe(tmp_path, data)), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.splitlines() == [err]
    assert err.startswith("sigattn train: error: ") and "gappy.csv: irregular timestamps: 1 gap" in err


def test_worker_error_message_is_cut_to_the_original_line():
    # what torch's ExceptionWrapper.reraise builds from an error in a worker process
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 1.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise DataError(msg)\n'
        "sigattn.errors.DataError: a.wav: truncated: header declares 16000 frames\n"
    )
    assert _one_line(wrapped) == "a.wav: truncated: header declares 16000 frames"
    assert _one_line(DataError("b.csv: line 3: oops")) == "b.csv: line 3: oops"
    # another library's multi-line text inside a message: joined, so the file name is kept
    embedded = DataError(
        "c.csv: could not parse the timestamps (time data '2020-13-01' doesn't match\n- passing"
    )
    assert (
        _one_line(embedded)
        == "c.csv: could not parse the timestamps (time data '2020-13-01' doesn't match - passing"
    )


@pytest.mark.slow
def test_truncated_wav_in_a_training_set_is_one_line(tmp_path):
    root = tmp_path / "speakers"
    rng = np.random.default_rng(0)
    for spk in ("s1", "s2", "s3", "s4"):
        for u in range(2):
            (root / spk).mkdir(parents=True, exist_ok=True)
            sf.write(root / spk / f"u{u}.wav", 0.1 * rng.standard_normal(16000 * 3).astype(np.float32), 16000)
    bad = root / "s2" / "u1.wav"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    recipe = tmp_path / "spk.yaml"
    recipe.write_text(
        f"task: speaker\nparams: {{source: folder, train: {str(root)!r}, test: {str(root)!r}, "
        "val_speakers: 1, crop_seconds: 1.0}\n"
        "trainer: {epochs: 1, batch_size: 4, num_workers: 1, device: cpu, amp: false}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "sigattn.cli", "train", str(recipe), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("sigattn train: error")]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "u1.wav: truncated: header declares 48000 frames" in lines[0]
