"""Shared helpers of the engine tests: tiny toy recipes and `sigattn` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from sigattn.train import checkpoint as ck

REPO = Path(__file__).resolve().parents[2]


def toy_raw(out_dir: Path, **trainer) -> dict:
    """A recipe dict of the toy task, small enough for a few seconds of CPU."""
    return {
        "task": "toy",
        "params": {
            "n_channels": 4,
            "n_times": 24,
            "min_times": 12,
            "n_classes": 2,
            "n_train": 64,
            "n_val": 20,
            "n_test": 21,
        },  # fmt: skip
        "model": {"name": "toynet", "hidden": 8},
        "trainer": {"epochs": 2, "batch_size": 16, "quiet": True, "out_dir": str(out_dir), **trainer},
        "optim": {"name": "adam", "lr": 0.01},
        "sched": {"name": "none"},
    }


def recipe_file(raw: dict, path: Path) -> Path:
    """Write a recipe dict as YAML (its stem names the run folder ``<out_dir>/<stem>/...``)."""
    path.write_text(yaml.safe_dump(raw))
    return path


def run_cli(
    args: list[str], env: dict | None = None, check: bool = True, cwd: Path = REPO, module: bool = True
):
    """Run `python -m sigattn.cli ARGS` (one torch thread, no CI progress bar) and return the result."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "CI": "true", **(env or {})}
    cmd = [sys.executable, "-m", "sigattn.cli", *args] if module else args
    res = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=240)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def last_state(run_dir: Path) -> dict:
    """The newest step checkpoint's state of a run folder."""
    return ck.load_checkpoint(ck.list_checkpoints(run_dir / "checkpoints")[-1])


def assert_tree_equal(a, b, path="state", atol: float = 0.0) -> None:
    """Exact (or atol) equality of nested checkpoint states."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), path
        assert a.shape == b.shape and a.dtype == b.dtype, path
        if atol == 0.0:
            assert torch.equal(a, b), f"{path}: max diff {(a.double() - b.double()).abs().max().item()}"
        else:
            torch.testing.assert_close(a.double(), b.double(), atol=atol, rtol=0, msg=path)
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for k in a:
            assert_tree_equal(a[k], b[k], f"{path}.{k}", atol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_tree_equal(x, y, f"{path}[{i}]", atol)
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
