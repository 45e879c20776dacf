"""Schedules against torch's own schedulers, the EMA against its formula, the sampler against DistributedSampler."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from sigattn.train.config import ConfigError, OptimConfig, SchedConfig
from sigattn.train.distributed import ResumableSampler, gather_outputs
from sigattn.train.optim import EMA, LRSchedule, build_optimizer


def ours(sched: SchedConfig, lr: float, total: int) -> list[float]:
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), OptimConfig(name="sgd", lr=lr))
    s = LRSchedule(opt, OptimConfig(name="sgd", lr=lr), sched, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        s.step()
    return out


def theirs(make, lr: float, total: int) -> list[float]:
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=lr)
    s = make(opt)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


def test_cosine_matches_torch():
    a = ours(SchedConfig(name="cosine", min_lr=1e-4), 0.1, 50)
    b = theirs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50, eta_min=1e-4), 0.1, 50)
    assert a == pytest.approx(b, rel=1e-9, abs=1e-12)


def test_cosine_warmup_linear():
    a = ours(SchedConfig(name="cosine", warmup_steps=4), 0.1, 20)
    assert a[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert a[4] == pytest.approx(0.1) and a[-1] < 0.01


@pytest.mark.parametrize("mode", ["triangular", "triangular2"])
def test_cyclic_matches_torch(mode):
    cfg = SchedConfig(name="cyclic", min_lr=1e-8, max_lr=1e-3, step_size_up=5, mode=mode)
    a = ours(cfg, 1e-3, 37)
    b = theirs(lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=1e-8, max_lr=1e-3, step_size_up=5, mode=mode,
                                                           cycle_momentum=False), 1e-3, 37)  # fmt: skip
    assert a == pytest.approx(b, rel=1e-9, abs=1e-15)


def test_onecycle_matches_torch():
    a = ours(SchedConfig(name="onecycle", max_lr=0.2), 0.2, 40)
    b = theirs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=40, cycle_momentum=False),
        0.2,
        40,
    )
    assert a == pytest.approx(b, rel=1e-9, abs=1e-15)


def test_cyclic_needs_step_size():
    with pytest.raises(ConfigError, match="step_size_up"):
        ours(SchedConfig(name="cyclic"), 0.1, 3)


def test_ema_formula():
    m = torch.nn.Linear(3, 1)
    w0 = m.weight.detach().clone()
    ema = EMA(m, 0.9)
    with torch.no_grad():
        m.weight.add_(1.0)
    ema.update(m)
    torch.testing.assert_close(ema.shadow["weight"], 0.9 * w0 + 0.1 * (w0 + 1.0))
    with pytest.raises(ConfigError, match="ema_decay"):
        EMA(m, 1.5)


@pytest.mark.parametrize(("n", "world"), [(10, 1), (10, 3), (7, 2)])
def test_sampler_matches_distributed_sampler(n, world):
    for rank in range(world):
        ref = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=5)
        ref.set_epoch(3)
        s = ResumableSampler(n, shuffle=True, seed=5, num_replicas=world, rank=rank)
        s.set_epoch(3)
        assert list(s) == list(ref)
        s.set_epoch(3, start=2)
        assert list(s) == list(ref)[2:] and len(s) == len(ref) - 2


def test_gather_dedups_by_index():
    outs = [{"index": torch.tensor([3, 1]), "v": torch.tensor([30.0, 10.0])},
            {"index": torch.tensor([0, 3]), "v": torch.tensor([0.0, 30.0])}]  # fmt: skip
    from sigattn.train.distributed import DistInfo

    m = gather_outputs(outs, DistInfo())
    assert m["index"].tolist() == [0, 1, 3] and m["v"].tolist() == [0.0, 10.0, 30.0]
