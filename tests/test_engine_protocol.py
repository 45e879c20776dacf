"""The Time-Series-Library training protocol through the one Trainer: the per-epoch ``step`` learning-rate
schedule (TSLib's ``lradj: type1``) and early stopping on the validation metric, including exact resumption."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sigattn.cli import main
from sigattn.train import checkpoint as ck
from sigattn.train.config import ConfigError, OptimConfig, SchedConfig, load_recipe, recipe_from_dict
from sigattn.train.optim import LRSchedule
from sigattn.train.trainer import KILL_ENV, Trainer
from tests.train.helpers import toy_raw

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
FROZEN_LR = (
    1e-12  # Adam moves each weight by about lr per step: far below float32 resolution, so val acc is fixed
)


def toy(out_dir: Path, epochs: int = 10, lr: float = FROZEN_LR, **trainer) -> dict:
    """The suite's toy recipe: 64 training items in batches of 16 = 4 optimiser steps per epoch, 20 val, 21 test."""
    raw = toy_raw(out_dir, epochs=epochs, **trainer)
    raw["optim"]["lr"] = lr
    return raw


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------------- step schedule
@pytest.mark.parametrize("step_epochs, gamma, steps_per_epoch", [(1, 0.5, 4), (2, 0.3, 5), (3, 1.0, 1)])
def test_step_schedule_matches_formula_and_torch_steplr(step_epochs, gamma, steps_per_epoch):
    base, epochs = 0.01, 7
    total = epochs * steps_per_epoch
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    cfg = SchedConfig(name="step", step_epochs=step_epochs, gamma=gamma)
    ours = LRSchedule(opt, OptimConfig(name="sgd", lr=base), cfg, total, steps_per_epoch=steps_per_epoch)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    ref = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=step_epochs, gamma=gamma)
    for epoch in range(epochs):
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            applied = opt.param_groups[0]["lr"]  # what the optimiser step `step` uses
            assert ours.lr_at(step) == applied
            assert applied == pytest.approx(base * gamma ** (epoch // step_epochs), rel=1e-12, abs=0)
            assert applied == pytest.approx(ref.get_last_lr()[0], rel=1e-12, abs=0)
            ours.step()
        ref_opt.step()
        ref.step()  # once per epoch


def test_step_schedule_warmup_first_and_resume():
    base, spe = 0.1, 4
    cfg = SchedConfig(name="step", warmup_steps=3, step_epochs=1, gamma=0.5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    s = LRSchedule(opt, OptimConfig(name="sgd", lr=base), cfg, 20, steps_per_epoch=spe)
    assert [s.lr_at(i) for i in range(3)] == pytest.approx([base / 3, 2 * base / 3, base])
    assert [s.lr_at(i) for i in (3, 4, 7, 8, 12)] == pytest.approx(
        [base, base / 2, base / 2, base / 4, base / 8]
    )
    for _ in range(9):
        s.step()
    again = LRSchedule(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base),
        OptimConfig(name="sgd", lr=base),
        cfg,
        20,
        steps_per_epoch=spe,
    )
    again.load_state_dict(s.state_dict())
    assert again.get_last_lr() == s.get_last_lr() == [base / 4]  # step 9 is in epoch 2


def test_trainer_applies_the_step_schedule_per_epoch(tmp_path):
    # grad_accum 2: 4 batches per epoch = 2 optimiser steps; the lr column of steps.csv is the lr each step used
    raw = toy(tmp_path, epochs=3, lr=0.01, grad_accum=2, run_name="r")
    raw["sched"] = {"name": "step", "step_epochs": 1, "gamma": 0.5}
    Trainer(recipe_from_dict(raw, name="toy")).fit()
    got = [(int(r["epoch"]), float(r["lr"])) for r in rows(tmp_path / "toy" / "r" / "steps.csv")]
    assert got == [(e, pytest.approx(0.01 * 0.5 ** (e - 1))) for e in (1, 1, 2, 2, 3, 3)]


# ---------------------------------------------------------------------------------- early stopping
def test_early_stop_when_val_cannot_improve(tmp_path, capsys):
    raw = toy(tmp_path, epochs=10, early_stop_patience=2, run_name="r", quiet=False)
    raw["sched"] = {"name": "step", "step_epochs": 1, "gamma": 0.5}
    metrics = Trainer(recipe_from_dict(raw, name="toy")).fit()
    run = tmp_path / "toy" / "r"
    epochs = rows(run / "epochs.csv")
    assert [r["epoch"] for r in epochs] == ["1", "2", "3"]
    assert len({r["val/acc"] for r in epochs}) == 1  # the val metric did not move: epoch 1 stays the best
    assert metrics["stopped_early"] == 1.0
    assert metrics["epochs"] == 3.0 and metrics["steps"] == 12.0 and metrics["best_epoch"] == 1.0
    assert json.loads((run / "metrics.json").read_text())["stopped_early"] == 1.0
    assert ck.load_checkpoint(run / "checkpoints" / "best.ckpt")["epoch"] == 1
    out = capsys.readouterr().out
    assert "early stop after epoch 3: no better val/acc for 2 evaluations" in out


def test_patience_counts_evaluations_and_a_full_run_is_not_early(tmp_path):
    # eval_every 2: validations after epochs 2, 4, 6 (and the last); patience 2 -> stop after epoch 6
    raw = toy(tmp_path, epochs=10, early_stop_patience=2, eval_every=2, run_name="a")
    m = Trainer(recipe_from_dict(raw, name="toy")).fit()
    assert (m["epochs"], m["stopped_early"], m["best_epoch"]) == (6.0, 1.0, 2.0)
    # patience reached exactly at the last epoch: training was not cut short
    raw = toy(tmp_path, epochs=3, early_stop_patience=2, run_name="b")
    m = Trainer(recipe_from_dict(raw, name="toy")).fit()
    assert (m["epochs"], m["stopped_early"]) == (3.0, 0.0)
    # without the option: all epochs, stopped_early 0
    raw = toy(tmp_path, epochs=4, run_name="c")
    m = Trainer(recipe_from_dict(raw, name="toy")).fit()
    assert (m["epochs"], m["stopped_early"]) == (4.0, 0.0)


def test_patience_counter_survives_sigkill_and_resume(tmp_path):
    # patience 3, val never improves: evaluations after epochs 2, 3, 4 are the three misses -> stop after 4.
    # Killed at step 11 (mid epoch 3): the epoch-2 checkpoint holds one miss; forgetting it would stop after 5.
    raw = toy(tmp_path, epochs=10, early_stop_patience=3)
    raw["sched"] = {"name": "step", "step_epochs": 1, "gamma": 0.5}
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "CI": "true", KILL_ENV: "11"}
    cmd = [sys.executable, "-m", "sigattn.cli", "train", str(recipe), "trainer.run_name=cut"]
    killed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = tmp_path / "toy" / "cut"
    last = ck.list_checkpoints(cut / "checkpoints")[-1]
    loop = ck.load_checkpoint(last)["loop"]
    assert (loop["epoch"], loop["step"], loop["evals_without_improvement"]) == (2, 8, 1)
    legacy = tmp_path / "toy" / "legacy"  # the same run folder, its checkpoint as an older sigattn wrote it
    shutil.copytree(cut, legacy)
    state = ck.load_checkpoint(legacy / "checkpoints" / last.name)
    del state["loop"]["evals_without_improvement"]
    ck.save_checkpoint(state, legacy / "checkpoints" / last.name)

    full = Trainer(load_recipe(recipe, ["trainer.run_name=full"])).fit()
    resumed = Trainer(load_recipe(recipe, ["trainer.run_name=cut"]), resume=cut).fit()
    assert full["epochs"] == resumed["epochs"] == 4.0
    assert full["stopped_early"] == resumed["stopped_early"] == 1.0
    assert {k: v for k, v in resumed.items() if k != "train_seconds"} == {
        k: v for k, v in full.items() if k != "train_seconds"
    }
    assert rows(cut / "epochs.csv") == rows(tmp_path / "toy" / "full" / "epochs.csv")
    steps_full = rows(tmp_path / "toy" / "full" / "steps.csv")
    steps_cut = rows(cut / "steps.csv")
    assert [(r["step"], r["lr"], r["loss"]) for r in steps_cut] == [
        (r["step"], r["lr"], r["loss"]) for r in steps_full
    ]
    assert [float(r["lr"]) for r in steps_full[::4]] == pytest.approx([FROZEN_LR * 0.5**e for e in range(4)])
    end_full = ck.load_checkpoint(ck.list_checkpoints(tmp_path / "toy" / "full" / "checkpoints")[-1])
    end_cut = ck.load_checkpoint(ck.list_checkpoints(cut / "checkpoints")[-1])
    assert end_full["loop"] == end_cut["loop"] and end_cut["scheduler"] == end_full["scheduler"]

    # a checkpoint without the counter (older sigattn) resumes with 0 misses: three more -> stop after epoch 5
    old = Trainer(load_recipe(recipe, ["trainer.run_name=legacy"]), resume=legacy).fit()
    assert (old["epochs"], old["stopped_early"]) == (5.0, 1.0)


# -------------------------------------------------------------------------------------- bad values
def one_line_error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "override, key",
    [
        ("trainer.early_stop_patience=0", "trainer.early_stop_patience must be >= 1, got 0"),
        ("trainer.early_stop_patience=-2", "trainer.early_stop_patience must be >= 1, got -2"),
        ("sched.gamma=0", "sched.gamma must be in (0, 1], got 0.0"),
        ("sched.gamma=1.5", "sched.gamma must be in (0, 1], got 1.5"),
        ("sched.step_epochs=0", "sched.step_epochs must be >= 1, got 0"),
        ("sched.name=steps", "key 'sched.name' must be one of"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, capsys, override, key):
    raw = toy(tmp_path, epochs=2)
    raw["sched"] = {"name": "step"}
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    err = one_line_error(["train", str(recipe), override], capsys)
    assert key in err
    assert not (tmp_path / "toy").exists()  # refused before any run folder


def test_direct_sched_config_is_checked_too():
    with pytest.raises(ConfigError, match=r"sched\.gamma"):
        SchedConfig(name="step", gamma=0.0)
    with pytest.raises(ConfigError, match=r"sched\.step_epochs"):
        SchedConfig(name="step", step_epochs=0)


def test_patience_without_val_split_is_one_line_error(tmp_path, capsys):
    raw = toy(tmp_path, epochs=2, early_stop_patience=3)
    raw["params"]["n_val"] = 0
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    err = one_line_error(["train", str(recipe)], capsys)
    assert "trainer.early_stop_patience=3" in err and "no 'val' split" in err
    assert not (tmp_path / "toy").exists()
