"""DDP: two gloo processes (torchrun) reach the single-process weights for the same global batch."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

from sigattn.train.config import load_recipe
from sigattn.train.distributed import DistInfo, RankStopped, peer_failure
from sigattn.train.trainer import Trainer

from .helpers import REPO, assert_tree_equal, last_state, recipe_file, run_cli, toy_raw


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


# rank 1 runs the CLI with its optimiser step patched to raise after step 1
_RAISING_RANK = """
import sys
from sigattn.cli import main
from sigattn.train.trainer import Trainer
real = Trainer._optimizer_step
def step(self):
    real(self)
    if self.step == 1:
        raise ValueError("rank 1 fails on purpose")
Trainer._optimizer_step = step
sys.exit(main(sys.argv[1:]))
"""


def test_survivor_of_a_failed_rank_says_so_in_one_line(tmp_path):
    # before: rank 0 printed ~30 lines of gloo traceback ("Connection reset by peer") for rank 1's failure
    raw = toy_raw(tmp_path, epochs=1, batch_size=8, num_threads=1)
    raw["params"].update(n_train=32, n_val=0, n_test=0)
    path = recipe_file(raw, tmp_path / "toy.yaml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    try:
        for rank in (0, 1):
            env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                   "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1", "CI": "true"}  # fmt: skip
            head = [sys.executable, "-c", _RAISING_RANK] if rank else [sys.executable, "-m", "sigattn.cli"]
            procs.append(
                subprocess.Popen(
                    [*head, "train", str(path)],
                    env=env,
                    cwd=REPO,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )  # fmt: skip
            )
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    (_, err0), (_, err1) = results
    assert procs[1].returncode == 1 and "ValueError: rank 1 fails on purpose" in err1  # its own error
    assert procs[0].returncode == 1
    assert len(err0.strip().splitlines()) == 1, err0
    assert re.fullmatch(r"sigattn train: rank 1 of 2 stopped \(.+\); this rank \(0\) stops too", err0.strip())


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as e:
        return e


def test_peer_failure_names_the_other_rank_and_leaves_local_errors_alone():
    two, four = DistInfo(rank=1, world_size=2), DistInfo(rank=0, world_size=4)
    gloo = _raised(RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:538] Read error "
                                "[127.0.0.1]:47016: Connection reset by peer"))  # fmt: skip
    got = peer_failure(gloo, two)
    assert isinstance(got, RankStopped)
    assert str(got) == (
        "rank 0 of 2 stopped (Read error [127.0.0.1]:47016: Connection reset by peer); this rank (1) stops too"
    )
    assert str(peer_failure(gloo, four)).startswith("another of the 4 ranks stopped (Read error")
    assert peer_failure(_raised(RuntimeError("shape mismatch in my own code")), two) is None
    assert peer_failure(gloo, DistInfo()) is None  # one process: nothing to blame on a peer
