"""DDP: two gloo processes (torchrun) reach the single-process weights for the same global batch."""

from __future__ import annotations

import json
import sys

from sigattn.train.config import load_recipe
from sigattn.train.trainer import Trainer

from .helpers import assert_tree_equal, last_state, recipe_file, run_cli, toy_raw


def test_two_process_gloo_matches_single_process(tmp_path):
    # global batch 8 = 2 ranks x 4; grad accumulation (no_sync path) and clipping on; odd-sized eval splits
    raw = toy_raw(tmp_path, epochs=2, batch_size=8, grad_accum=2, clip_grad_norm=0.5, eval_batch_size=6)
    raw["optim"] = {"name": "sgd", "lr": 0.05, "momentum": 0.9}
    raw["params"].update(n_val=19, n_test=21)
    path = recipe_file(raw, tmp_path / "toy.yaml")

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    res = run_cli([*torchrun, "-m", "sigattn.cli", "train", str(path), "trainer.run_name=ddp"], module=False)
    single = Trainer(load_recipe(path, ["trainer.run_name=one"]))
    m1 = single.fit()

    ddp_dir, one_dir = tmp_path / "toy" / "ddp", tmp_path / "toy" / "one"
    a, b = last_state(one_dir), last_state(ddp_dir)
    assert a["loop"]["step"] == b["loop"]["step"] == 8 and b["loop"]["world_size"] == 2
    assert_tree_equal(a["model"], b["model"], "model", atol=1e-6)
    assert_tree_equal(a["optimizer"]["state"], b["optimizer"]["state"], "momentum", atol=1e-6)
    assert len(b["rng"]) == 2  # each rank's RNG state is kept
    m2 = json.loads((ddp_dir / "metrics.json").read_text())
    # evaluation gathered both ranks' shards, dropped DistributedSampler's padding duplicates
    assert m2["test/n"] == m1["test/n"] == 21.0 and m2["val/n"] == 19.0
    assert abs(m2["test/loss"] - m1["test/loss"]) < 1e-5
    assert "run folder" in res.stdout and res.stdout.count("run folder") == 1  # only rank 0 reports
