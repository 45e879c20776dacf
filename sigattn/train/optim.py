"""Optimisers, learning-rate schedules per optimiser step, and an EMA of the weights.

Schedules are closed-form functions of the step count, so resuming needs only that count:

- ``cosine``: linear warm-up over ``warmup_steps`` then cosine from ``lr`` to ``min_lr`` (Loshchilov & Hutter,
  "SGDR", ICLR 2017); without warm-up it equals ``torch.optim.lr_scheduler.CosineAnnealingLR``.
- ``cyclic``: triangular cycles between ``min_lr`` and ``max_lr`` (Smith, "Cyclical Learning Rates", WACV
  2017), as the ECAPA-TDNN recipe uses; equals ``CyclicLR(cycle_momentum=False)``.
- ``onecycle``: Smith & Topin, "Super-Convergence" (2019); equals ``OneCycleLR`` (cosine annealing,
  ``div_factor=25``, ``final_div_factor=1e4``) with warm-up ``warmup_steps`` or 30 % of the run.
- ``step``: ``lr * gamma ** floor(epoch / step_epochs)`` with ``epoch = step // steps_per_epoch``, constant
  within an epoch (after the warm-up, if any); equals ``StepLR(step_size=step_epochs, gamma=gamma)`` stepped
  once per epoch. ``step_epochs=1, gamma=0.5`` is Time-Series-Library's ``lradj: type1``.

Example:
    >>> import torch
    >>> from sigattn.train.config import OptimConfig, SchedConfig
    >>> opt = build_optimizer(torch.nn.Linear(2, 1).parameters(), OptimConfig(lr=0.1))
    >>> sched = LRSchedule(opt, OptimConfig(lr=0.1), SchedConfig(name="cosine"), total_steps=10)
    >>> round(sched.lr_at(5), 4)
    0.05
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from sigattn.train.config import ConfigError, OptimConfig, SchedConfig

__all__ = ["build_optimizer", "LRSchedule", "EMA"]


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum/Nesterov) from an :class:`OptimConfig`."""
    params = [p for p in params if p.requires_grad]
    if cfg.lr <= 0:
        raise ConfigError(f"optim.lr must be > 0, got {cfg.lr}")
    if cfg.name in ("adam", "adamw"):
        if len(cfg.betas) != 2:
            raise ConfigError(f"optim.betas must have 2 values, got {cfg.betas}")
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    raise ConfigError(f"unknown optimiser {cfg.name!r}; valid: adam, adamw, sgd")


class LRSchedule:
    """Sets every param group's learning rate to ``lr_at(step)`` before each optimiser step.

    Args:
        optimizer: the optimiser whose groups are driven.
        optim: gives the peak ``lr``.
        sched: the schedule.
        total_steps: optimiser steps of the whole run (for cosine and one-cycle).
        steps_per_epoch: optimiser steps of one epoch (required by ``step``, which decays per epoch).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        optim: OptimConfig,
        sched: SchedConfig,
        total_steps: int,
        steps_per_epoch: int | None = None,
    ):
        self.optimizer, self.cfg = optimizer, sched
        self.base_lr = optim.lr
        self.total = max(int(total_steps), 1)
        self.steps_per_epoch = steps_per_epoch
        self.step_count = 0
        if sched.name == "cyclic" and not sched.step_size_up:
            raise ConfigError("sched.step_size_up (steps per half cycle) is required for sched.name=cyclic")
        if sched.name == "step" and (steps_per_epoch is None or steps_per_epoch < 1):
            raise ValueError(f"sched.name=step needs steps_per_epoch >= 1, got {steps_per_epoch}")
        if sched.warmup_steps < 0:
            raise ConfigError(f"sched.warmup_steps must be >= 0, got {sched.warmup_steps}")
        self._apply()

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based)."""
        c, lr = self.cfg, self.base_lr
        if c.name == "onecycle":
            return self._onecycle(step)
        if c.name == "cyclic":
            return self._cyclic(step)
        if c.warmup_steps and step < c.warmup_steps:
            return lr * (step + 1) / c.warmup_steps
        if c.name == "cosine":
            span = max(self.total - c.warmup_steps, 1)
            p = min(max(step - c.warmup_steps, 0) / span, 1.0)
            return c.min_lr + (lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        if c.name == "step":
            return lr * c.gamma ** ((step // self.steps_per_epoch) // c.step_epochs)
        return lr

    def _cyclic(self, step: int) -> float:
        c = self.cfg
        hi, lo, ss = (c.max_lr if c.max_lr is not None else self.base_lr), c.min_lr, c.step_size_up
        cycle = math.floor(1 + step / (2 * ss))
        x = abs(step / ss - 2 * cycle + 1)
        scale = 1.0 if c.mode == "triangular" else 1.0 / (2.0 ** (cycle - 1))
        return lo + (hi - lo) * max(0.0, 1.0 - x) * scale

    def _onecycle(self, step: int) -> float:
        c = self.cfg
        peak = c.max_lr if c.max_lr is not None else self.base_lr
        start = peak / 25.0
        end = c.min_lr if c.min_lr > 0 else start / 1e4
        up_end = (c.warmup_steps if c.warmup_steps else 0.3 * self.total) - 1
        down_end = self.total - 1

        def cos_anneal(a: float, b: float, pct: float) -> float:
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)

        if step <= up_end:
            return cos_anneal(start, peak, step / up_end if up_end > 0 else 1.0)
        pct = (step - up_end) / max(down_end - up_end, 1e-12)
        return cos_anneal(peak, end, min(pct, 1.0))

    def _apply(self) -> None:
        lr = self.lr_at(self.step_count)
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def step(self) -> None:
        """Advance one optimiser step."""
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self._apply()


class EMA:
    """Exponential moving average of a model's state: ``shadow = decay * shadow + (1 - decay) * weights``.

    Floating-point entries (parameters and float buffers) are averaged; integer buffers (BatchNorm's
    ``num_batches_tracked``) are copied. Evaluation and the exported model use the shadow weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"trainer.ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if s.is_floating_point():
                s.mul_(self.decay).add_(v.detach().to(s.dtype), alpha=1.0 - self.decay)
            else:
                s.copy_(v)
        self.num_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
