"""The training loop against a hand-written SGD step, gradient accumulation, limits and the run folder."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F

from sigattn.tasks.toy import ToyParams, ToyTask
from sigattn.train import checkpoint as ck
from sigattn.train.config import load_recipe, recipe_from_dict
from sigattn.train.distributed import ResumableSampler
from sigattn.train.rng import seed_everything
from sigattn.train.tools import evaluate_checkpoint
from sigattn.train.trainer import Trainer

from .helpers import assert_tree_equal, last_state, toy_raw


def fit(raw: dict, name: str = "toy") -> Trainer:
    t = Trainer(recipe_from_dict(raw, name=name))
    t.fit()
    return t


def test_one_step_equals_hand_written_sgd(tmp_path):
    raw = toy_raw(tmp_path, epochs=1, batch_size=16, run_name="a", amp=False)
    raw["params"].update(n_train=16, n_val=0, n_test=0)
    raw["optim"] = {"name": "sgd", "lr": 0.5, "momentum": 0.0}
    fit(raw)
    got = last_state(tmp_path / "toy" / "a")["model"]

    seed_everything(0)  # what the engine promises: seed, datasets, then the model
    task = ToyTask(ToyParams(**raw["params"]), seed=0, model=raw["model"])
    train = task.build_datasets()["train"]
    model = task.build_model()
    order = list(ResumableSampler(16, shuffle=True, seed=0))
    batch = task.collate([train[i] for i in order])
    loss = F.cross_entropy(model(batch["x"], batch["lengths"]), batch["y"])
    loss.backward()
    with torch.no_grad():
        expected = {k: (p - 0.5 * p.grad) for k, p in model.named_parameters()}
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, atol=1e-6, rtol=0, msg=k)


def test_grad_accumulation_equals_big_batch(tmp_path):
    base = toy_raw(tmp_path, epochs=2, batch_size=16, amp=False)
    base["optim"] = {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    fit({**base, "trainer": {**base["trainer"], "run_name": "big"}})
    fit({**base, "trainer": {**base["trainer"], "run_name": "acc", "batch_size": 8, "grad_accum": 2}})
    a, b = last_state(tmp_path / "toy" / "big"), last_state(tmp_path / "toy" / "acc")
    assert a["loop"]["step"] == b["loop"]["step"] == 8
    assert_tree_equal(a["model"], b["model"], "model", atol=1e-6)


def test_run_folder_contents(tmp_path):
    raw = toy_raw(tmp_path, epochs=3, batch_size=16, run_name="r", ema_decay=0.5, keep_last=2)
    raw["params"].update(n_test=21)  # 21 = 16 + 5: the last test batch must not be dropped
    t = fit(raw)
    run = tmp_path / "toy" / "r"
    m = json.loads((run / "metrics.json").read_text())
    assert m == pytest.approx(t.metrics) and m["test/n"] == 21.0 and m["val/n"] == 20.0
    assert m["steps"] == 12 and m["epochs"] == 3 and 1 <= m["best_epoch"] <= 3
    assert load_recipe(run / "config.yaml") == recipe_from_dict(raw, name="toy")  # the stored name wins
    steps = list(csv.DictReader(open(run / "steps.csv")))
    assert [int(r["step"]) for r in steps] == list(range(1, 13))
    assert {"lr", "loss", "acc", "samples_per_s", "epoch"} <= set(steps[0])
    epochs = list(csv.DictReader(open(run / "epochs.csv")))
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3] and "val/acc" in epochs[0]
    best = ck.load_checkpoint(run / "checkpoints" / "best.ckpt")
    assert best["epoch"] == m["best_epoch"] and best["metrics"]["acc"] == m["val/acc"]
    assert len(ck.list_checkpoints(run / "checkpoints")) == 2  # keep_last
    report = (run / "report.md").read_text()
    assert "| test | acc |" in report and ("PASS" in report or "FAIL" in report)
    if importlib.util.find_spec("matplotlib"):  # the plots extra (absent only in `make test-core`)
        assert "](plots/training_curves.png)" in report and "](plots/test_confusion.png)" in report
        assert (run / "plots" / "training_curves.png").stat().st_size > 1000
    else:
        assert "](plots/" not in report and not list(run.glob("plots/*.png"))
    if importlib.util.find_spec("tensorboard"):  # the logging extra
        assert list((run / "tb").glob("events.out.tfevents.*"))
    # the test split was evaluated with best.ckpt's (EMA) weights: evaluating that file afresh agrees
    again = evaluate_checkpoint(run)
    assert again["test/acc"] == m["test/acc"] and again["test/loss"] == pytest.approx(m["test/loss"])


def test_max_steps_and_bad_monitor(tmp_path, monkeypatch):
    t = fit(toy_raw(tmp_path, epochs=50, max_steps=3, run_name="m"))
    assert t.metrics["steps"] == 3 and t.metrics["epochs"] == 1
    with pytest.raises(KeyError, match=r"monitor metric 'auc' not among val metrics \['acc', 'loss', 'n'\]"):
        fit(toy_raw(tmp_path, epochs=1, monitor="auc", monitor_mode="max", run_name="x"))

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match=r"batch_size=16 .* divisible by the 3 processes"):
        fit(toy_raw(tmp_path, epochs=1, run_name="y"))


def test_num_threads_is_applied_and_checked(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        fit(toy_raw(tmp_path, epochs=1, num_threads=1, run_name="t1"))
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match=r"trainer.num_threads must be >= 1 or null, got 0"):
            fit(toy_raw(tmp_path, epochs=1, num_threads=0, run_name="t0"))
    finally:
        torch.set_num_threads(before)


class _EpochRecorder(torch.utils.data.Dataset):
    """Wraps a dataset; records the epoch it was told (``set_epoch``) at every item fetched."""

    def __init__(self, base):
        self.base, self.epoch, self.seen = base, -1, []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        self.seen.append(self.epoch)
        return self.base[i]


def test_engine_calls_train_set_epoch_before_each_epoch(tmp_path, monkeypatch):
    # per-epoch crops (speaker CropDataset) rely on it: every item of epoch e must be drawn with epoch e
    made = {}
    build = ToyTask.build_datasets

    def with_recorder(self):
        d = dict(build(self))
        d["train"] = made["train"] = _EpochRecorder(d["train"])
        return d

    monkeypatch.setattr(ToyTask, "build_datasets", with_recorder)
    fit(toy_raw(tmp_path, epochs=3, run_name="se"))  # 64 items per epoch
    assert made["train"].seen == [0] * 64 + [1] * 64 + [2] * 64


def test_task_metrics_run_with_the_model_in_eval_mode(tmp_path, monkeypatch):
    # Task.metrics may embed more data with the model (a speaker cohort): it must not run in train mode,
    # where BatchNorm would use batch statistics and overwrite its running statistics
    seen = []
    predict, metrics = ToyTask.predict, ToyTask.metrics

    def keep_model(self, model, batch):
        self._m = model
        return predict(self, model, batch)

    def check_mode(self, outputs, split):
        seen.append((split, self._m.training))
        return metrics(self, outputs, split)

    monkeypatch.setattr(ToyTask, "predict", keep_model)
    monkeypatch.setattr(ToyTask, "metrics", check_mode)
    fit(toy_raw(tmp_path, epochs=2, run_name="ev"))
    assert seen == [("val", False), ("val", False), ("test", False)]


def test_fresh_run_into_an_existing_run_folder_is_refused(tmp_path):
    # before: the second run appended to the first run's logs, overwrote its best.ckpt and rotated away its
    # own step checkpoints (keeping the first run's higher-numbered ones for a later --resume)
    raw = toy_raw(tmp_path, epochs=2, run_name="same", checkpoint_every=1, keep_last=3)
    fit(raw)
    folder = tmp_path / "toy" / "same"
    before = {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    again = toy_raw(tmp_path, epochs=1, run_name="same", checkpoint_every=1, keep_last=3)
    with pytest.raises(ValueError, match=r"already holds a run; continue it with `sigattn train --resume"):
        fit(again)
    assert {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} == before
    with pytest.raises(ValueError, match=r"already holds a run"):  # an explicit run folder, too
        Trainer(recipe_from_dict(again, name="toy"), run_dir=folder).fit()
    # resuming it is still allowed (the finished run re-evaluates and reports)
    t = Trainer(recipe_from_dict(raw, name="toy"), resume=folder)
    assert t.fit()["steps"] == 8


def test_resume_from_an_older_checkpoint_ignores_a_later_best_ckpt(tmp_path):
    # best.ckpt is overwritten in place; resuming from a checkpoint older than it must not report its
    # (later) weights as the older state's best epoch
    raw = toy_raw(
        tmp_path, epochs=2, run_name="b", checkpoint_every=1, keep_last=20, monitor="loss", monitor_mode="min"
    )
    fit(raw)
    folder = tmp_path / "toy" / "b"
    best = ck.load_checkpoint(folder / "checkpoints" / "best.ckpt")
    assert best["epoch"] == 2  # precondition: the second epoch was the better one
    end_of_epoch_1 = ck.step_path(folder / "checkpoints", 4)  # 64 items / 16 = 4 steps per epoch
    assert ck.load_checkpoint(end_of_epoch_1)["loop"]["best_epoch"] == 1
    t = Trainer(recipe_from_dict(raw, name="toy"), resume=end_of_epoch_1)
    t._setup()
    t._restore(end_of_epoch_1)
    assert t.best_weights is None and t.best_epoch == -1 and t.best_value is None


def test_monitor_other_than_the_task_default_needs_its_mode(tmp_path):
    # the toy task monitors accuracy (max): monitor=loss with the task's mode selected the highest val loss
    with pytest.raises(
        ValueError, match=r"trainer.monitor='loss' is not task 'toy'.*set trainer.monitor_mode"
    ):
        fit(toy_raw(tmp_path, epochs=1, monitor="loss", run_name="m1"))
    t = fit(toy_raw(tmp_path, epochs=3, monitor="loss", monitor_mode="min", run_name="m2"))
    rows = list(csv.DictReader(open(t.run_dir / "epochs.csv")))
    losses = [float(r["val/loss"]) for r in rows]
    assert t.metrics["best_epoch"] == 1 + losses.index(min(losses))
