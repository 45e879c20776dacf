"""Exact resumption: a run SIGKILLed mid-epoch and resumed ends with the uninterrupted run's exact state."""

from __future__ import annotations

import csv
import signal

import pytest
import torch
import yaml

from sigattn.cli import main
from sigattn.train import checkpoint as ck
from sigattn.train.config import load_recipe, recipe_from_dict
from sigattn.train.trainer import KILL_ENV, TERM_ENV, Trainer, TrainingInterrupted

from .helpers import assert_tree_equal, last_state, recipe_file, run_cli, toy_raw


def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path):
    # dropout (torch RNG), EMA, warm-up cosine schedule and grad accumulation all have to resume exactly
    raw = toy_raw(tmp_path, epochs=2, batch_size=8, grad_accum=2, checkpoint_every=2, keep_last=3, ema_decay=0.9,
                  clip_grad_norm=1.0)  # fmt: skip
    raw["model"]["dropout"] = 0.3
    raw["sched"] = {"name": "cosine", "warmup_steps": 2}
    args = [
        "train",
        str(recipe_file(raw, tmp_path / "toy.yaml")),
    ]  # 64 items / 8 = 8 batches = 4 optimiser steps per epoch

    killed = run_cli([*args, "trainer.run_name=cut"], env={KILL_ENV: "7"}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = tmp_path / "toy" / "cut"
    steps = [p.name for p in ck.list_checkpoints(cut / "checkpoints")]
    assert steps[-1] == "step-000000006.ckpt"  # mid-epoch 2: step 7 was lost with the process
    mid = ck.load_checkpoint(cut / "checkpoints" / steps[-1])["loop"]
    assert (mid["epoch"], mid["batch_in_epoch"], mid["step"]) == (1, 4, 6)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocess (OMP_NUM_THREADS=1): same reductions, same bits
    try:
        Trainer(load_recipe(args[1], ["trainer.run_name=full"])).fit()  # the uninterrupted run
        Trainer(load_recipe(args[1], ["trainer.run_name=cut"]), resume=cut).fit()  # resume in this process
    finally:
        torch.set_num_threads(threads)
    full, resumed = last_state(tmp_path / "toy" / "full"), last_state(cut)
    assert resumed["loop"]["step"] == full["loop"]["step"] == 8
    for key in ("model", "optimizer", "scheduler", "ema", "rng", "loop", "scaler"):
        assert_tree_equal(full[key], resumed[key], key)
    # the step log continues without a gap or a duplicate
    import csv

    rows = list(csv.DictReader(open(cut / "steps.csv")))
    full_rows = list(csv.DictReader(open(tmp_path / "toy" / "full" / "steps.csv")))
    assert [r["step"] for r in rows] == [str(i) for i in range(1, 9)]
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]


def test_damaged_newest_checkpoint_falls_back_to_the_newest_readable_one(tmp_path, capsys):
    # before: `--resume RUN` refused the run outright when its newest checkpoint was damaged
    raw = toy_raw(tmp_path, epochs=1, checkpoint_every=1, keep_last=5, run_name="r")
    raw["params"].update(n_train=32, n_val=0, n_test=0)
    Trainer(recipe_from_dict(raw, name="toy")).fit()
    run = tmp_path / "toy" / "r"
    folder = run / "checkpoints"
    ckpts = ck.list_checkpoints(folder)
    assert [p.name for p in ckpts] == ["step-000000001.ckpt", "step-000000002.ckpt"]  # 32 / 16 = 2 steps
    uninterrupted = ck.load_checkpoint(ckpts[1])
    first = ckpts[0].read_bytes()
    newest = ckpts[1]
    newest.write_bytes(newest.read_bytes()[:1000])
    capsys.readouterr()

    assert main(["train", "--resume", str(run)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    kept = folder / "step-000000002.ckpt.damaged"
    assert err[0].startswith(f"sigattn train: warning: checkpoint {str(newest)!r} cannot be read (truncated")
    assert err[0].endswith(
        f"; resuming from the newest readable checkpoint {str(ckpts[0])!r} instead of {str(newest)!r}; "
        f"the damaged file(s) are kept as {str(kept)!r}"
    )
    assert kept.stat().st_size == 1000  # set aside, not deleted, not overwritten by the resumed step 2
    assert ckpts[0].read_bytes() == first
    # step 1 -> 2 replayed exactly: the new step-2 checkpoint is the one that was damaged
    assert_tree_equal(ck.load_checkpoint(newest), uninterrupted)


def test_no_readable_checkpoint_is_one_line_and_touches_nothing(tmp_path, capsys):
    raw = toy_raw(tmp_path, epochs=1, checkpoint_every=1, keep_last=5, run_name="r")
    raw["params"].update(n_train=32, n_val=0, n_test=0)
    Trainer(recipe_from_dict(raw, name="toy")).fit()
    run = tmp_path / "toy" / "r"
    for p in ck.list_checkpoints(run / "checkpoints"):
        p.write_bytes(b"garbage")
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"sigattn train: error: no readable checkpoint in {str(run / 'checkpoints')!r}: all 2 step "
        f"checkpoints are damaged (newest: checkpoint {str(run / 'checkpoints' / 'step-000000002.ckpt')!r}"
    )
    assert err.endswith("they are left as they are; start a new run in another folder")
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before


class _Killed(Exception):
    pass


def test_run_killed_before_its_first_checkpoint_restarts_on_resume(tmp_path, capsys, monkeypatch):
    # before: --resume said "no checkpoint to resume from", a fresh run "already holds a run"
    raw = toy_raw(tmp_path, epochs=1, run_name="k")  # 64 / 16 = 4 steps, checkpoint at the epoch end only
    path = recipe_file(raw, tmp_path / "toy.yaml")
    real_step = Trainer._optimizer_step

    def step_then_die(self):
        real_step(self)
        if self.step == 2:
            raise _Killed  # the process dies after step 2, before any checkpoint

    monkeypatch.setattr(Trainer, "_optimizer_step", step_then_die)
    with pytest.raises(_Killed):
        main(["train", str(path)])
    monkeypatch.setattr(Trainer, "_optimizer_step", real_step)
    run = tmp_path / "toy" / "k"
    assert (run / "config.yaml").is_file() and not list((run / "checkpoints").iterdir())
    stored = (run / "config.yaml").read_text()
    capsys.readouterr()

    # a fresh run into that folder is refused with what to do
    assert main(["train", str(path), "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == (
        f"sigattn train: error: run folder {str(run)!r} holds a run that stopped before its first checkpoint; "
        f"start it again from scratch with `sigattn train --resume {run}` (uses its config.yaml), or choose "
        "another trainer.run_name / run folder"
    )

    assert main(["train", "--resume", str(run)]) == 0
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sigattn train: run folder {str(run)!r} has no checkpoint (the run stopped before its first one); "
        "starting it from scratch with its recipe"
    )
    assert (run / "config.yaml").read_text() == stored and not (run / "config.yaml.old").exists()
    rows = list(csv.DictReader(open(run / "steps.csv")))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]  # the dead run's rows 1-2 are not doubled
    # the same as an uninterrupted run of the recipe
    Trainer(load_recipe(path, ["trainer.run_name=full"])).fit()
    assert_tree_equal(last_state(run)["model"], last_state(tmp_path / "toy" / "full")["model"])


def test_sigterm_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    raw = toy_raw(tmp_path, epochs=2, batch_size=16, ema_decay=0.8)  # 4 steps per epoch, no step checkpoints
    raw["model"]["dropout"] = 0.2
    Trainer(recipe_from_dict({**raw, "trainer": {**raw["trainer"], "run_name": "full"}}, name="toy")).fit()
    cut = recipe_from_dict({**raw, "trainer": {**raw["trainer"], "run_name": "term"}}, name="toy")
    monkeypatch.setenv(TERM_ENV, "3")
    with pytest.raises(TrainingInterrupted, match=r"SIGTERM after step 3.*--resume .*term"):
        Trainer(cut).fit()
    monkeypatch.delenv(TERM_ENV)
    run = tmp_path / "toy" / "term"
    assert ck.list_checkpoints(run / "checkpoints")[-1].name == "step-000000003.ckpt"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again
    Trainer(cut, resume=run).fit()
    full = last_state(tmp_path / "toy" / "full")
    for key in ("model", "optimizer", "ema", "rng", "loop"):
        assert_tree_equal(full[key], last_state(run)[key], key)


def test_restart_with_another_recipe_keeps_the_old_config(tmp_path, capsys, monkeypatch):
    raw = toy_raw(tmp_path, epochs=1, run_name="k")
    raw["params"].update(n_train=32, n_val=0, n_test=0)  # 2 steps
    real_step = Trainer._optimizer_step

    def step_then_die(self):
        real_step(self)
        raise _Killed

    monkeypatch.setattr(Trainer, "_optimizer_step", step_then_die)
    with pytest.raises(_Killed):
        Trainer(recipe_from_dict(raw, name="toy")).fit()
    monkeypatch.setattr(Trainer, "_optimizer_step", real_step)
    run = tmp_path / "toy" / "k"
    stored = (run / "config.yaml").read_text()
    capsys.readouterr()
    raw["optim"]["lr"] = 0.05
    assert Trainer(recipe_from_dict(raw, name="toy"), resume=run).fit()["steps"] == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[1] == (
        f"sigattn train: the recipe differs from the stored {run / 'config.yaml'}; the old one is kept as "
        f"{run / 'config.yaml.old'}"
    )
    assert (run / "config.yaml.old").read_text() == stored
    assert yaml.safe_load((run / "config.yaml").read_text())["optim"]["lr"] == 0.05


def test_resume_never_restarts_a_finished_run_whose_step_checkpoints_were_deleted(tmp_path, capsys):
    # a finished run, step checkpoints removed to save disk: best.ckpt, metrics.json and epochs.csv remain;
    # --resume must not take it for a run killed before its first checkpoint and train over its results
    raw = toy_raw(tmp_path, epochs=1, run_name="done")
    path = recipe_file(raw, tmp_path / "toy.yaml")
    assert main(["train", str(path)]) == 0
    run = tmp_path / "toy" / "done"
    for c in (run / "checkpoints").glob("step-*.ckpt"):
        c.unlink()
    before = {
        p.name: p.read_bytes()
        for p in [run / "metrics.json", run / "epochs.csv", run / "checkpoints" / "best.ckpt"]
    }
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "trainer.epochs=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sigattn train: error: run folder {str(run)!r} has no step checkpoint to resume from but holds results "
        "(best.ckpt, epochs.csv rows, metrics.json); it is left as it is: start a new run in another folder"
    )
    assert {
        p: (run / ("checkpoints/" if p == "best.ckpt" else "") / p).read_bytes() for p in before
    } == before
