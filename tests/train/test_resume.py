"""Exact resumption: a run SIGKILLed mid-epoch and resumed ends with the uninterrupted run's exact state."""

from __future__ import annotations

import signal

import pytest
import torch

from sigattn.train import checkpoint as ck
from sigattn.train.config import load_recipe, recipe_from_dict
from sigattn.train.trainer import KILL_ENV, TERM_ENV, Trainer, TrainingInterrupted

from .helpers import assert_tree_equal, last_state, recipe_file, run_cli, toy_raw


def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path):
    # dropout (torch RNG), EMA, warm-up cosine schedule and grad accumulation all have to resume exactly
    raw = toy_raw(tmp_path, epochs=2, batch_size=8, grad_accum=2, checkpoint_every=2, keep_last=3, ema_decay=0.9,
                  clip_grad_norm=1.0)  # fmt: skip
    raw["params"]["dropout"] = 0.3
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


def test_resume_from_damaged_checkpoint_is_refused(tmp_path):
    raw = toy_raw(tmp_path, epochs=1, checkpoint_every=1, keep_last=5, run_name="r")
    raw["params"].update(n_train=32, n_val=0, n_test=0)
    Trainer(recipe_from_dict(raw, name="toy")).fit()
    folder = tmp_path / "toy" / "r" / "checkpoints"
    ckpts = ck.list_checkpoints(folder)
    assert len(ckpts) == 2  # 32 / 16 = 2 steps: one step checkpoint + the epoch-end one
    good = {p.name: p.read_bytes() for p in ckpts[:-1]}
    newest = ckpts[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.raises(ck.CheckpointError, match=newest.name) as e:
        Trainer(recipe_from_dict(raw, name="toy"), resume=folder.parent).fit()
    assert f"older checkpoints you can pass to --resume: {ckpts[0]}" in str(e.value)
    assert {p.name: p.read_bytes() for p in ck.list_checkpoints(folder)[:-1]} == good
    assert newest.stat().st_size == 1000  # nothing silently "repaired" or overwritten


def test_sigterm_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    raw = toy_raw(tmp_path, epochs=2, batch_size=16, ema_decay=0.8)  # 4 steps per epoch, no step checkpoints
    raw["params"]["dropout"] = 0.2
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
