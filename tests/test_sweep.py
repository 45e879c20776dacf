"""Sweeps: a recipe x axes x seeds as ordinary run folders, killed and resumed, failures recorded, submitit path."""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sigattn.cli import main as cli
from sigattn.train.config import ConfigError
from sigattn.train.sweep import load_sweep, parse_axis, sweep_from_recipe

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "recipes" / "toy.yaml"
FAST = {"trainer.epochs": 2, "params.n_train": 128, "params.n_val": 32, "params.n_test": 64}


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _write_sweep(tmp_path: Path, **extra) -> Path:
    import yaml

    spec = {"recipe": str(TOY), "axes": {"model.attention": ["se", "none"]}, "seeds": [0, 1],
            "overrides": dict(FAST), "baseline": {"model.attention": "none"}, **extra}  # fmt: skip
    path = tmp_path / "toy_attention.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_parse_axis_reads_yaml_values():
    assert parse_axis("params.pred_len=96,192") == ("params.pred_len", [96, 192])
    assert parse_axis("model.attention=se, eca") == ("model.attention", ["se", "eca"])
    assert parse_axis("model.channels=[[8, 8], [16]]") == ("model.channels", [[8, 8], [16]])
    with pytest.raises(ConfigError, match="key.sub=v1,v2"):
        parse_axis("model.attention")


def test_runs_are_the_product_of_axes_and_seeds(tmp_path):
    sweep = load_sweep(_write_sweep(tmp_path), out=tmp_path / "sw")
    got = sorted((r.values["model.attention"], r.values["seed"]) for r in sweep.runs)
    assert got == [("none", 0), ("none", 1), ("se", 0), ("se", 1)]
    run = next(r for r in sweep.runs if r.values == {"model.attention": "se", "seed": 1, "fold": None})
    assert run.overrides[-2:] == ["model.attention=se", "trainer.seed=1"]
    assert "trainer.epochs=2" in run.overrides
    # the same settings always map to the same folder; other settings to another
    again = load_sweep(_write_sweep(tmp_path), out=tmp_path / "sw")
    assert [r.id for r in again.runs] == [r.id for r in sweep.runs]
    assert len({r.id for r in sweep.runs}) == 4


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"axis": {"x": [1]}}, "unknown key 'axis'; did you mean 'axes'"),
        ({"axes": {"model.atention": ["se"]}}, "model.atention"),
        ({"baseline": {"model.hidden": 8}}, "baseline key 'model.hidden' is not an axis"),
        ({"baseline": {"model.attention": "eca"}}, "baseline model.attention='eca' is not one of"),
        ({"axes": {"model.attention": []}}, "must be a non-empty list"),
        ({"axes": {"trainer.seed": [1, 2]}}, "give seeds with 'seeds'"),
        ({"folds": "all"}, "task 'toy' has no folds"),
        ({"parallel": 0}, "'parallel' must be >= 1"),
        ({"executor": "slurm"}, "'executor' must be one of"),
    ],
)
def test_bad_sweeps_fail_before_any_run_naming_the_key(tmp_path, extra, fragment):
    with pytest.raises(ConfigError, match=None) as e:
        load_sweep(_write_sweep(tmp_path, **extra), out=tmp_path / "sw")
    assert fragment in str(e.value)
    assert not (tmp_path / "sw").exists()


def test_cli_bad_sweep_is_one_line_exit_2(tmp_path, capsys):
    assert cli(["sweep", str(_write_sweep(tmp_path, axis={"x": [1]})), "--out", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'axes'" in err[0]


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    # optim.lr=-1 passes the recipe check; the run refuses it when it builds its optimiser
    sweep = sweep_from_recipe(TOY, {"optim.lr": [0.01, -1.0]}, seeds=[0], overrides=dict(FAST),
                              out=str(tmp_path / "sw"), threads=1)  # fmt: skip
    counts = sweep.run(quiet=True)
    assert counts == {"done": 1, "failed": 1}
    index = json.loads((tmp_path / "sw" / "index.json").read_text())
    failed = [r for r in index["runs"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["values"]["optim.lr"] == -1.0
    assert "optim.lr must be > 0" in failed[0]["error"] and "\n" not in failed[0]["error"]
    log = (tmp_path / "sw" / failed[0]["dir"] / "sweep.log").read_text()
    assert "Traceback" in log  # the whole traceback is kept next to the run
    # the table has both runs: the failed one with its status and no metrics
    rows = list(csv.DictReader((tmp_path / "sw" / "results.csv").open()))
    assert sorted(r["status"] for r in rows) == ["done", "failed"]
    # the tables again, against a baseline given as text on the command line
    assert cli(["results", str(tmp_path / "sw"), "--baseline", "optim.lr=0.01"]) == 0
    assert "optim.lr=0.01" in (tmp_path / "sw" / "results.md").read_text()
    assert cli(["results", str(tmp_path / "sw"), "--baseline", "optim.lr"]) == 2


def _sweep_proc(sweep_file: Path, out: Path, log) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "sigattn.cli",
        "sweep",
        str(sweep_file),
        "--out",
        str(out),
        "--parallel",
        "1",
    ]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _wait_unlocked(lock: Path, timeout: float = 60.0) -> None:
    """Until no process holds the run's lock (the killed sweep's worker has checkpointed and gone)."""
    end = time.time() + timeout
    while time.time() < end:
        if not lock.exists():
            return
        with open(lock, "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                time.sleep(0.2)
    raise AssertionError(f"{lock} still locked after {timeout} s")


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the worker's parent-death signal is Linux's"
)
def test_sigkilled_sweep_resumes_without_rerunning_finished_runs(tmp_path):
    # 2 values x 2 seeds; more epochs so that the kill usually lands inside a run
    sweep_file = _write_sweep(tmp_path, overrides={**FAST, "trainer.epochs": 6, "params.n_train": 512})
    out = tmp_path / "sw"
    with open(tmp_path / "first.log", "w") as log:
        proc = _sweep_proc(sweep_file, out, log)
        try:
            end = time.time() + 240
            while time.time() < end and proc.poll() is None:
                done = list(out.glob("runs/*/metrics.json"))
                started = [
                    p for p in out.glob("runs/*/config.yaml") if not (p.parent / "metrics.json").exists()
                ]
                if done and started:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.json")}
    assert 1 <= len(finished) < 4
    for lock in out.glob("locks/*.lock"):
        _wait_unlocked(lock)
    # the interrupted run (SIGTERM from the dying sweep: it checkpointed its step) and what it had trained
    partial = {
        p.parent.name: p.read_text().splitlines()
        for p in out.glob("runs/*/steps.csv")
        if p.parent.name not in finished and any(p.parent.glob("checkpoints/step-*.ckpt"))
    }
    # the rerun: finished runs untouched, the others done (the interrupted one resumed)
    with open(tmp_path / "second.log", "w") as log:
        proc = _sweep_proc(sweep_file, out, log)
        assert proc.wait(300) == 0, (tmp_path / "second.log").read_text()
    text = (tmp_path / "second.log").read_text()
    assert f"({len(finished)} already done)" in text
    for name, mtime in finished.items():
        assert (out / "runs" / name / "metrics.json").stat().st_mtime_ns == mtime
        assert (out / "runs" / name / "sweep.log").read_text().count("=== ") == 1  # trained once
    index = json.loads((out / "index.json").read_text())
    assert [r["status"] for r in index["runs"]] == ["done"] * 4
    # every run trained all 6 epochs exactly once, the interrupted one included (steps.csv continues)
    for r in index["runs"]:
        steps = [int(row["step"]) for row in csv.DictReader((out / r["dir"] / "steps.csv").open())]
        assert steps == list(range(1, len(steps) + 1)) and _metrics(out / r["dir"])["epochs"] == 6
    # a resumed run continued its steps.csv (the rows it had are still there), it did not start over
    for name, rows in partial.items():
        assert (out / "runs" / name / "steps.csv").read_text().splitlines()[: len(rows)] == rows
        assert (out / "runs" / name / "sweep.log").read_text().count("=== ") == 2
    # the results table holds exactly the run folders' metrics
    rows = {row["id"]: row for row in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == {r["id"] for r in index["runs"]}
    for r in index["runs"]:
        m = _metrics(out / r["dir"])
        for key in ("test/acc", "val/acc", "best_epoch"):
            assert math.isclose(float(rows[r["id"]][key]), m[key], rel_tol=0, abs_tol=1e-12)
    assert (out / "results.md").is_file()


@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_submitit_path_runs_the_same_runs(tmp_path, cluster):
    pytest.importorskip("submitit")
    out = tmp_path / "sw"
    sweep = sweep_from_recipe(TOY, {"model.attention": ["none"]}, seeds=[0], overrides=dict(FAST), out=str(out),
                              executor="submitit", submitit={"cluster": cluster, "timeout_min": 5})  # fmt: skip
    assert sweep.run(quiet=True) == {"done": 1}
    run = sweep.runs[0]
    assert run.job_id and (out / "submitit").is_dir()
    # the same run, trained directly, gives the same metrics (same seed, same settings)
    from sigattn.train.config import load_recipe
    from sigattn.train.trainer import Trainer

    direct = Trainer(load_recipe(TOY, run.overrides), run_dir=tmp_path / "direct").fit()
    got = _metrics(out / run.dir)
    assert got["test/acc"] == pytest.approx(direct["test/acc"], abs=1e-9)
    assert got["val/loss"] == pytest.approx(direct["val/loss"], rel=1e-5)


def test_recipe_entries_carry_their_own_overrides(tmp_path):
    entries = [{"file": str(TOY), "name": "small", "overrides": {"model.hidden": 8}},
               {"file": str(TOY), "name": "large", "overrides": ["model.hidden=32"]}]  # fmt: skip
    sweep = sweep_from_recipe(
        entries, {"model.attention": ["se"]}, seeds=[3], overrides=dict(FAST), out=str(tmp_path)
    )
    assert sweep.axes == ["recipe", "model.attention"]
    by_name = {r.values["recipe"]: r for r in sweep.runs}
    assert set(by_name) == {"small", "large"}
    assert "model.hidden=8" in by_name["small"].overrides and "model.hidden=32" in by_name["large"].overrides
    with pytest.raises(ConfigError, match="share the name"):
        sweep_from_recipe([str(TOY), str(TOY)], {}, out=str(tmp_path))
    with pytest.raises(ConfigError, match="keys file, name, overrides"):
        sweep_from_recipe([{"path": str(TOY)}], {}, out=str(tmp_path))


def test_named_variants_are_an_axis_of_override_sets(tmp_path):
    axes = {
        "size": {"small": {"model.hidden": 8, "optim.lr": 0.02}, "default": {}},
        "model.attention": ["se"],
    }
    sweep = sweep_from_recipe(TOY, axes, seeds=[0], overrides=dict(FAST), out=str(tmp_path))
    by = {r.values["size"]: r for r in sweep.runs}
    assert set(by) == {"small", "default"} and sweep.axes == ["size", "model.attention"]
    assert {"model.hidden=8", "optim.lr=0.02"} <= set(by["small"].overrides)
    assert not any(o.startswith("model.hidden") for o in by["default"].overrides)
    with pytest.raises(ConfigError, match="model.hiden"):  # a variant's override is checked like any other
        sweep_from_recipe(TOY, {"size": {"bad": {"model.hiden": 8}}}, out=str(tmp_path))


def test_slots_split_threads_and_deal_out_gpus(tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    sweep = sweep_from_recipe(TOY, {}, parallel=4, threads=3, out=str(tmp_path))
    slots = sweep._slots()
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "2", "3"]
    assert {s["OMP_NUM_THREADS"] for s in slots} == {"3"}
    two = sweep_from_recipe(TOY, {}, parallel=2, gpus_per_run=2, out=str(tmp_path))._slots()
    assert [s["CUDA_VISIBLE_DEVICES"] for s in two] == ["0,1", "2,3"]
    listed = sweep_from_recipe(TOY, {}, parallel=2, devices=[5, 7], out=str(tmp_path))._slots()
    assert [s["CUDA_VISIBLE_DEVICES"] for s in listed] == ["5", "7"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    cpu = sweep_from_recipe(TOY, {}, parallel=2, out=str(tmp_path))._slots()
    assert all("CUDA_VISIBLE_DEVICES" not in s for s in cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu[0]["OMP_NUM_THREADS"] == str(max(1, cores // 2))


def test_run_without_training_reports_what_is_there(tmp_path):
    sweep = sweep_from_recipe(TOY, {"model.attention": ["se", "none"]}, seeds=[0], out=str(tmp_path / "sw"))
    assert sweep.run(quiet=True, train=False) == {"pending": 2}
    assert not (tmp_path / "sw" / "runs").exists()
    rows = list(csv.DictReader((tmp_path / "sw" / "results.csv").open()))
    assert [r["status"] for r in rows] == ["pending", "pending"]


def test_a_dead_worker_is_retried_once_then_recorded(tmp_path, monkeypatch):
    # every attempt of this run SIGKILLs its own worker at step 2 (before any checkpoint): the sweep starts a
    # fresh worker, tries once more, then records the run as failed and goes on
    from sigattn.train.trainer import KILL_ENV

    monkeypatch.setenv(KILL_ENV, "2")
    sweep = sweep_from_recipe(TOY, {}, seeds=[0], overrides=dict(FAST), out=str(tmp_path / "sw"), threads=1)
    assert sweep.run(quiet=True) == {"failed": 1}
    run = json.loads((tmp_path / "sw" / "index.json").read_text())["runs"][0]
    assert run["status"] == "failed" and "worker process died (twice)" in run["error"]
    assert (tmp_path / "sw" / run["dir"] / "sweep.log").read_text().count("=== ") == 2
