"""The one training engine: any :class:`~sigattn.train.task.Task`, one CPU, one GPU or many (DDP via torchrun).

The loop follows PyTorch's DistributedDataParallel recipe (Li et al., "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training", VLDB 2020) with bf16 autocast on CUDA, gradient accumulation, clipping,
per-step schedules, an optional EMA of the weights, atomic verified checkpoints and exact resumption.

Example:
    >>> from sigattn.train import Trainer, load_recipe
    >>> metrics = Trainer(load_recipe("recipes/toy.yaml", ["trainer.epochs=1"])).fit()  # doctest: +SKIP
    >>> sorted(metrics)[:2]  # doctest: +SKIP
    ['best_epoch', 'epochs']
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader

from sigattn.tasks import get_task
from sigattn.train import checkpoint as ck
from sigattn.train.config import ConfigError, Recipe, recipe_from_dict, to_dict
from sigattn.train.devices import find_resume_checkpoint, select_device, to_device, unwrap
from sigattn.train.distributed import (
    DistInfo,
    ResumableSampler,
    all_reduce_mean,
    broadcast_object,
    gather_outputs,
    init_distributed,
    peer_failure,
)
from sigattn.train.logs import CSVLog, TensorBoardLog, make_progress, progress_enabled
from sigattn.train.optim import EMA, LRSchedule, build_optimizer
from sigattn.train.report import plot_curves, write_report
from sigattn.train.rng import get_rng_state, seed_everything, set_deterministic, set_rng_state

__all__ = [
    "Trainer",
    "TrainingInterrupted",
    "select_device",
    "to_device",
    "unwrap",
    "find_resume_checkpoint",
    "newest_valid_checkpoint",
]

KILL_ENV = "SIGATTN_TEST_KILL_AT_STEP"  # tests: the process SIGKILLs itself right after this optimiser step
TERM_ENV = "SIGATTN_TEST_TERM_AT_STEP"  # tests: the process sends itself SIGTERM right after this step


class TrainingInterrupted(RuntimeError):
    """Raised after SIGTERM (e.g. a pre-empted cluster job): a checkpoint was written; resume from ``run_dir``."""

    def __init__(self, run_dir: Path, step: int):
        super().__init__(
            f"training stopped by SIGTERM after step {step}; checkpoint written; continue with "
            f"`sigattn train --resume {run_dir}`"
        )
        self.run_dir, self.step = run_dir, step


def _say(message: str) -> None:
    """One line on stderr that the user must see even with ``trainer.quiet`` (a fallback, a restart)."""
    print(f"sigattn train: {message}", file=sys.stderr, flush=True)


def newest_valid_checkpoint(
    path: str | os.PathLike,
) -> tuple[Path | None, dict | None, list[tuple[Path, ck.CheckpointError]]]:
    """The checkpoint to resume from: ``(file, state, damaged)``.

    ``path`` is a checkpoint file (read as is: an unreadable file is an error) or a run folder, whose newest
    *readable* step checkpoint is used; the newer ones that cannot be read come back in ``damaged`` (newest
    first) with their errors. A run folder that holds a ``config.yaml`` but no checkpoint (stopped before its
    first one) gives ``(None, None, [])``.

    Raises:
        CheckpointError: no checkpoint and no ``config.yaml``, or not one step checkpoint is readable.
    """
    p = Path(path)
    if p.is_file():
        return p, ck.load_checkpoint(p), []
    for folder in (p / "checkpoints", p):
        found = ck.list_checkpoints(folder)
        if found:
            break
    else:
        if (p / "config.yaml").is_file():
            # only a run that never got further than its config: a finished run whose step checkpoints were
            # deleted (best.ckpt, metrics.json or epoch rows remain) is never restarted over its results
            kept = [q.name for q in (*p.glob("checkpoints/*.ckpt"), p / "metrics.json") if q.is_file()]
            epochs = p / "epochs.csv"
            if epochs.is_file() and len(epochs.read_text(errors="replace").strip().splitlines()) > 1:
                kept.append("epochs.csv rows")
            if kept:
                raise ck.CheckpointError(
                    f"run folder {str(p)!r} has no step checkpoint to resume from but holds results "
                    f"({', '.join(sorted(kept))}); it is left as it is: start a new run in another folder"
                )
            return None, None, []
        return find_resume_checkpoint(p), None, []  # raises, naming the path
    damaged: list[tuple[Path, ck.CheckpointError]] = []
    for c in reversed(found):
        try:
            return c, ck.load_checkpoint(c), damaged
        except ck.CheckpointError as e:
            damaged.append((c, e))
    raise ck.CheckpointError(
        f"no readable checkpoint in {str(folder)!r}: all {len(found)} step checkpoints are damaged (newest: "
        f"{damaged[0][1]}); they are left as they are; start a new run in another folder"
    )


def _unused_name(path: Path, suffix: str) -> Path:
    """``<name><suffix>``, or ``<name><suffix>-1``, ``-2``, ... : the first that does not exist (nothing kept aside
    is ever overwritten)."""
    dest, i = path.with_name(path.name + suffix), 1
    while dest.exists():
        dest, i = path.with_name(f"{path.name}{suffix}-{i}"), i + 1
    return dest


def _set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint to ``<name>.damaged`` (never deleted; no longer found by --resume and never
    overwritten when training reaches its step again)."""
    dest = _unused_name(path, ".damaged")
    path.rename(dest)
    return dest


def _params_diff(stored: Any, current: Any, limit: int = 3) -> str:
    """``model.x is A in the checkpoint, B in the recipe`` (then ``params.x``) for the first differing settings
    of two stored configs."""
    stored = stored if isinstance(stored, dict) else {}
    current = current if isinstance(current, dict) else {}
    parts = []
    for section in ("model", "params"):
        a, b = stored.get(section), current.get(section)
        if not isinstance(a, dict) or not isinstance(b, dict):
            continue
        keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
        parts += [
            f"{section}.{k} is {a.get(k)!r} in the checkpoint, {b.get(k)!r} in the recipe" for k in keys
        ]
    return ", ".join(parts[:limit]) + (f" (and {len(parts) - limit} more)" if len(parts) > limit else "")


class Trainer:
    """Trains ``recipe.task`` as the recipe says and writes a run folder.

    Args:
        cfg: a :class:`~sigattn.train.config.Recipe` (or the equivalent plain dict).
        run_dir: write here instead of ``<out_dir>/<recipe>/<time>/`` (the demo uses ``runs/demo/<domain>``).
        resume: a checkpoint file or run folder to continue exactly from.

    After :meth:`fit`: ``run_dir``, ``task`` (the instance whose ``metrics`` ran), ``model`` (the evaluated
    weights) and ``metrics``.
    """

    def __init__(
        self,
        cfg: Recipe | dict,
        *,
        run_dir: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
    ):
        self.cfg = recipe_from_dict(cfg) if isinstance(cfg, dict) else cfg
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.metrics: dict[str, float] = {}
        self.plots: list[Path] = []
        self.checks: dict[str, bool] | None = None
        self._restart = False  # resuming a run folder that has no checkpoint: start it again from step 0

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        c = self.cfg.trainer
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if c.batch_size % world:  # checked before joining the process group: fail fast, on every rank
            raise ConfigError(
                f"trainer.batch_size={c.batch_size} (the global batch) must be divisible by the {world} processes"
            )
        probe = select_device(c.device)
        self.info: DistInfo = init_distributed(probe.type)
        self.device = select_device(c.device, self.info.local_rank)
        self.main = self.info.is_main
        if c.num_threads is not None:
            if c.num_threads < 1:
                raise ConfigError(f"trainer.num_threads must be >= 1 or null, got {c.num_threads}")
            # Small models on few cores run faster on one intra-op thread; under DDP on CPU each rank needs
            # its own share of the cores.
            torch.set_num_threads(c.num_threads)
        set_deterministic(c.deterministic)
        seed_everything(c.seed)
        model_kw = {"model": self.cfg.model} if self.cfg.model is not None else {}
        self.task = get_task(self.cfg.task)(self.cfg.params, seed=c.seed, **model_kw)
        self.datasets = dict(self.task.build_datasets())
        if "train" not in self.datasets:
            raise ValueError(f"task {self.cfg.task!r}: build_datasets() returned no 'train' split")
        self.raw_model = self.task.build_model().to(self.device)
        seed_everything(c.seed + self.info.rank)  # per-rank streams for dropout/augmentation
        self.amp_dtype = None
        if c.amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        model: nn.Module = self.raw_model
        if self.info.enabled:
            if self.device.type == "cuda":
                model = self.raw_model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            ids = [self.device.index] if self.device.type == "cuda" else None
            unused = bool(getattr(self.task, "ddp_find_unused_parameters", False))
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)
        if c.compile:
            model = torch.compile(model)
        self.model = model
        self.eval_model = copy.deepcopy(self.raw_model) if c.ema_decay else self.raw_model
        self.ema = EMA(self.raw_model, c.ema_decay) if c.ema_decay else None
        self.opt = build_optimizer(self.raw_model.parameters(), self.cfg.optim)
        self.per_rank_bs = c.batch_size // self.info.world_size
        n_train = len(self.datasets["train"])
        self.sampler = ResumableSampler(
            n_train, shuffle=True, seed=c.seed, num_replicas=self.info.world_size, rank=self.info.rank
        )
        self.loader_gen = torch.Generator()
        self.batches_per_epoch = math.ceil(self.sampler.per_rank / self.per_rank_bs)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / c.grad_accum)
        if c.max_steps:
            self.total_steps = c.max_steps
            self.n_epochs = math.ceil(c.max_steps / self.steps_per_epoch)
        else:
            self.total_steps, self.n_epochs = c.epochs * self.steps_per_epoch, c.epochs
        self.sched = LRSchedule(
            self.opt, self.cfg.optim, self.cfg.sched, self.total_steps, self.steps_per_epoch
        )
        self.monitor = c.monitor or getattr(self.task, "monitor", None)
        self.monitor_mode = c.monitor_mode or getattr(self.task, "monitor_mode", "min")
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best_value: float | None = None
        self.best_epoch, self.best_metrics, self.best_weights = -1, {}, None
        self.evals_without_improvement = 0  # consecutive validations without a better monitor value
        self.epoch_rows: list[dict] = []
        self.epoch_losses: list[float] = []  # this epoch's step losses so far (kept across a resume)

    def _loader(self, split: str, train: bool) -> DataLoader:
        c = self.cfg.trainer
        ds = self.datasets[split]
        if train:
            sampler, bs = self.sampler, self.per_rank_bs
        else:
            sampler = ResumableSampler(
                len(ds), shuffle=False, num_replicas=self.info.world_size, rank=self.info.rank
            )
            bs = math.ceil((c.eval_batch_size or c.batch_size) / self.info.world_size)
        return DataLoader(
            ds, batch_size=bs, sampler=sampler, collate_fn=self.task.collate, num_workers=c.num_workers,
            drop_last=False, generator=self.loader_gen, pin_memory=self.device.type == "cuda",
        )  # fmt: skip

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _make_run_dir(self) -> None:
        c = self.cfg.trainer
        path = None
        if self.main:
            if self.run_dir is None:
                base = Path(c.out_dir) / self.cfg.name
                stamp = c.run_name or time.strftime("%Y%m%d-%H%M%S")
                path, i = base / stamp, 1
                while path.exists() and not c.run_name:
                    path, i = base / f"{stamp}-{i}", i + 1
            else:
                path = self.run_dir
            has_ckpt = any((path / "checkpoints").glob("*.ckpt"))
            taken = (path / "config.yaml").exists() or has_ckpt
            if self.resume is None and taken:
                # a fresh run here would append to the old logs and rotate away its own checkpoints
                path = ConfigError(
                    f"run folder {str(path)!r} already holds a run; continue it with `sigattn train --resume "
                    f"{path}`, or choose another trainer.run_name / run folder"
                    if has_ckpt
                    else f"run folder {str(path)!r} holds a run that stopped before its first checkpoint; "
                    f"start it again from scratch with `sigattn train --resume {path}` (uses its config.yaml), "
                    "or choose another trainer.run_name / run folder"
                )
            else:
                if self._restart:
                    self._keep_changed_config(path / "config.yaml")
                path.mkdir(parents=True, exist_ok=True)
                (path / "checkpoints").mkdir(exist_ok=True)
                (path / "config.yaml").write_text(yaml.safe_dump(to_dict(self.cfg), sort_keys=False))
                path = str(path)
        path = broadcast_object(path, self.info)
        if isinstance(path, ConfigError):  # raised on every rank
            raise path
        self.run_dir = Path(path)

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict:
        rng = get_rng_state()
        rngs = [rng]
        if self.info.enabled:
            rngs = [None] * self.info.world_size
            dist.all_gather_object(rngs, rng)
        return {
            "config": to_dict(self.cfg),
            "model": self.raw_model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "rng": rngs,
            "loop": {
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "step": self.step,
                "world_size": self.info.world_size,
                "best_value": self.best_value,
                "best_epoch": self.best_epoch,
                "best_metrics": self.best_metrics,
                "epoch_losses": list(self.epoch_losses),
                "evals_without_improvement": self.evals_without_improvement,
            },  # fmt: skip
        }

    def _save_step_checkpoint(self) -> None:
        state = self._state()  # collective (gathers RNG states): every rank calls it
        if self.main:
            folder = self.run_dir / "checkpoints"
            ck.save_checkpoint(state, ck.step_path(folder, self.step))
            ck.rotate_checkpoints(folder, self.cfg.trainer.keep_last)

    def _keep_changed_config(self, stored: Path) -> None:
        """Restarting a run with another recipe than its config.yaml: keep the old one as config.yaml.old."""
        new = yaml.safe_dump(to_dict(self.cfg), sort_keys=False)
        if stored.is_file() and stored.read_text(errors="replace") != new:
            old = _unused_name(stored, ".old")  # an earlier restart's copy is kept too
            stored.replace(old)
            _say(f"the recipe differs from the stored {stored}; the old one is kept as {old}")

    def _restore(self, path: Path, state: dict | None = None) -> None:
        state = ck.load_checkpoint(path) if state is None else state
        diff = _params_diff(state.get("config"), to_dict(self.cfg))
        ck.check_state_fits(
            self.raw_model,
            state["model"],
            path,
            f"the recipe's model settings differ from the checkpoint's: {diff}"
            if diff
            else "the model built from the recipe differs from the checkpoint's (another sigattn version?)",
        )
        self.raw_model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        loop = state["loop"]
        self.epoch, self.batch_in_epoch, self.step = loop["epoch"], loop["batch_in_epoch"], loop["step"]
        self.best_value, self.best_epoch = loop["best_value"], loop["best_epoch"]
        self.best_metrics = dict(loop["best_metrics"])
        self.epoch_losses = list(loop["epoch_losses"])
        self.evals_without_improvement = int(loop.get("evals_without_improvement", 0))  # older checkpoints: 0
        rngs = state["rng"]
        set_rng_state(rngs[self.info.rank] if len(rngs) == self.info.world_size else rngs[0])
        best = path.parent / "best.ckpt"
        stale = False
        if self.main and best.exists():
            saved = ck.load_checkpoint(best)
            # best.ckpt is overwritten in place: after resuming from an older checkpoint it may hold a later
            # epoch than this state's best_epoch; those weights must not be reported as that epoch's
            stale = saved.get("epoch") != self.best_epoch or saved.get("step", 0) > self.step
            self.best_weights = None if stale else saved["weights"]
        if broadcast_object(stale, self.info):  # start model selection afresh from here, on every rank
            self.best_value, self.best_epoch, self.best_metrics = None, -1, {}
            self.evals_without_improvement = 0

    # ------------------------------------------------------------- evaluation
    def _eval_weights(self) -> nn.Module:
        if self.ema is not None:
            self.ema.copy_to(self.eval_model)
        return self.eval_model

    @torch.no_grad()
    def evaluate(self, split: str, model: nn.Module | None = None) -> tuple[dict[str, float], dict | None]:
        """Metrics of ``split`` (same on every rank) and, on rank 0, the merged ``predict`` outputs."""
        model = model or self._eval_weights()
        was_training = model.training
        model.eval()
        outs = []
        loader = self._loader(split, train=False)
        on = self.main and progress_enabled(self.cfg.trainer.quiet)
        bar = make_progress(len(loader.sampler) * self.info.world_size, f"eval {split}", on)
        for batch in loader:
            with self._autocast():
                out = self.task.predict(model, to_device(batch, self.device))
            outs.append({k: (v.float() if v.is_floating_point() else v).cpu() for k, v in out.items()})
            bar.update(len(out["index"]) * self.info.world_size)
        bar.close()
        merged = gather_outputs(outs, self.info)
        # metrics may run the model again (e.g. a speaker cohort): still in eval mode here
        metrics = {k: float(v) for k, v in self.task.metrics(merged, split).items()} if self.main else None
        model.train(was_training)
        return broadcast_object(metrics, self.info), merged

    # ------------------------------------------------------------------- loop
    def _train_step(self, batch: Any, group_size: int, sync: bool) -> tuple[float, dict[str, float]]:
        ctx = contextlib.nullcontext() if sync or not self.info.enabled else self.model.no_sync()
        with ctx:
            with self._autocast():
                loss, logs = self.task.loss(self.model, batch, epoch=self.epoch, step=self.step)
            if not torch.isfinite(loss.detach()).all():
                raise FloatingPointError(
                    f"non-finite training loss ({loss.item()}) at epoch {self.epoch}, step {self.step}"
                )
            self.scaler.scale(loss / group_size).backward()
        return float(loss.detach()), {k: float(v) for k, v in logs.items()}

    def _optimizer_step(self) -> None:
        c = self.cfg.trainer
        if c.clip_grad_norm:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.raw_model.parameters(), c.clip_grad_norm)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.raw_model)

    def _run_epoch(self, steps_log: CSVLog, tb: TensorBoardLog, bar_on: bool) -> float:
        c = self.cfg.trainer
        start = self.batch_in_epoch
        self.sampler.set_epoch(self.epoch, start=start * self.per_rank_bs)
        train_set = self.datasets["train"]
        if hasattr(train_set, "set_epoch"):  # per-epoch crops/augmentation; before workers copy the dataset
            train_set.set_epoch(self.epoch)
        self.loader_gen.manual_seed(c.seed * 1_000_003 + self.epoch)
        self.model.train()
        n_items = self.sampler.per_rank * self.info.world_size
        bar = make_progress(n_items, f"epoch {self.epoch + 1}/{self.n_epochs}", bar_on and self.main,
                            initial=min(start * c.batch_size, n_items))  # fmt: skip
        losses, acc_loss, acc_logs, t0 = self.epoch_losses, [], {}, time.perf_counter()
        kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
        term_at = int(os.environ.get(TERM_ENV, "0") or 0)
        nb, ga = self.batches_per_epoch, c.grad_accum
        try:
            for bi, batch in enumerate(self._loader("train", train=True), start=start):
                group = bi // ga
                group_size = min(ga, nb - group * ga)
                last_in_group = (bi + 1) % ga == 0 or bi + 1 == nb
                loss, logs = self._train_step(to_device(batch, self.device), group_size, last_in_group)
                acc_loss.append(loss)
                for k, v in logs.items():
                    acc_logs.setdefault(k, []).append(v)
                self.batch_in_epoch = bi + 1
                n_here = min(c.batch_size, n_items - bi * c.batch_size)
                bar.update(n_here)
                if not last_in_group:
                    continue
                lr = self.sched.get_last_lr()[0]
                self._optimizer_step()
                step_loss = all_reduce_mean(sum(acc_loss) / len(acc_loss), self.info, self.device)
                losses.append(step_loss)
                dt = time.perf_counter() - t0
                row = {"step": self.step, "epoch": self.epoch + 1, "lr": lr, "loss": step_loss}
                row |= {k: sum(v) / len(v) for k, v in acc_logs.items()}
                row["samples_per_s"] = group_size * c.batch_size / max(dt, 1e-9)
                acc_loss, acc_logs, t0 = [], {}, time.perf_counter()
                if self.main:
                    steps_log.write(row)
                    if self.step % c.log_every == 0:
                        tb.scalars(
                            {k: v for k, v in row.items() if k not in ("step", "epoch")}, self.step, "train/"
                        )
                        bar.set_postfix(loss=f"{step_loss:.4g}", lr=f"{lr:.3g}")
                saved = bool(c.checkpoint_every and self.step % c.checkpoint_every == 0 and bi + 1 < nb)
                if saved:
                    self._save_step_checkpoint()
                if kill_at and self.step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                if term_at and self.step == term_at:
                    os.kill(os.getpid(), signal.SIGTERM)
                if self._stop_agreed():
                    if not saved:
                        self._save_step_checkpoint()
                    raise TrainingInterrupted(self.run_dir, self.step)
                if self.step >= self.total_steps:
                    break
        finally:
            bar.close()
        return sum(losses) / len(losses) if losses else math.nan

    def _stop_agreed(self) -> bool:
        """True on every rank once any rank got SIGTERM (one tiny all-reduce per step under DDP)."""
        if not self.info.enabled:
            return self._stop_requested
        flag = torch.tensor([float(self._stop_requested)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _patience_spent(self) -> bool:
        """True once ``trainer.early_stop_patience`` validations in a row brought no better monitor value."""
        patience = self.cfg.trainer.early_stop_patience
        return patience is not None and self.evals_without_improvement >= patience

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.monitor_mode == "min" else value > self.best_value

    def fit(self) -> dict[str, float]:
        """Train, select the best epoch on ``val``, test, write the run folder; returns the final metrics.

        Keys: ``test/<metric>`` (best weights, or final weights without a val split), ``val/<metric>`` (the
        best epoch's), ``train/loss`` (last epoch mean), ``best_epoch``, ``epochs``, ``steps``, ``stopped_early``
        (1.0 when ``trainer.early_stop_patience`` ended training before its last epoch, else 0.0).

        Raises:
            TrainingInterrupted: after SIGTERM, once the current optimiser step is checkpointed.
        """
        self._stop_requested = False
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            return self._fit()
        except RuntimeError as e:
            stopped = peer_failure(e, getattr(self, "info", DistInfo()))
            if stopped is None:
                raise
            raise stopped from None  # one line instead of pages of gloo/NCCL traceback on every survivor
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._stop_requested = True

    def _fit(self) -> dict[str, float]:
        self._setup()
        c = self.cfg.trainer
        default = getattr(self.task, "monitor", None)
        if c.monitor and c.monitor != default and not c.monitor_mode and "val" in self.datasets:
            # the task's monitor_mode belongs to its own metric (e.g. max for accuracy): applied to another
            # metric (e.g. loss) it would select the worst epoch
            raise ConfigError(
                f"trainer.monitor={c.monitor!r} is not task {self.cfg.task!r}'s default metric {default!r} "
                f"(mode {self.monitor_mode!r}); set trainer.monitor_mode to 'min' or 'max' for it"
            )
        if c.early_stop_patience is not None and "val" not in self.datasets:
            raise ConfigError(
                f"trainer.early_stop_patience={c.early_stop_patience} needs a validation split, but task "
                f"{self.cfg.task!r} has no 'val' split here; set trainer.early_stop_patience=null"
            )
        resume_path = None
        if self.resume is not None:
            try:
                resume_path, state, damaged = newest_valid_checkpoint(self.resume)
            except ck.CheckpointError as e:
                given = Path(self.resume)
                older = (
                    [p for p in ck.list_checkpoints(given.parent) if p != given] if given.is_file() else []
                )
                hint = (
                    f"; older checkpoints you can pass to --resume: {', '.join(map(str, older))}"
                    if older
                    else ""
                )
                raise ck.CheckpointError(f"{e}{hint}") from e
            if resume_path is None:  # config.yaml but no checkpoint: the run stopped before its first one
                self._restart = True
                if self.run_dir is None:
                    self.run_dir = Path(self.resume)
                if self.main:
                    _say(
                        f"run folder {str(self.resume)!r} has no checkpoint (the run stopped before its first "
                        "one); starting it from scratch with its recipe"
                    )
            else:
                if damaged and self.main:
                    kept = [_set_aside(p) for p, _ in damaged]
                    names = ", ".join(repr(str(p)) for p, _ in damaged)
                    _say(
                        f"warning: {damaged[0][1]}; resuming from the newest readable checkpoint "
                        f"{str(resume_path)!r} instead of {names}; the damaged file(s) are kept as "
                        f"{', '.join(repr(str(k)) for k in kept)}"
                    )
                self._restore(resume_path, state)
                if self.run_dir is None:
                    self.run_dir = resume_path.parent.parent
        self._make_run_dir()
        steps_log = CSVLog(self.run_dir / "steps.csv") if self.main else None
        epochs_log = CSVLog(self.run_dir / "epochs.csv") if self.main else None
        tb = (
            TensorBoardLog(self.run_dir / "tb", purge_step=self.step + 1 if self.resume is not None else None)
            if self.main
            else None
        )
        if self.main and self.resume is not None:  # resumed, or restarted from step 0
            steps_log.truncate_after("step", self.step)
            epochs_log.truncate_after("epoch", self.epoch)
        self.epoch_rows = epochs_log.read() if self.main else []
        bar_on = progress_enabled(c.quiet)
        has_val = "val" in self.datasets
        train_loss = math.nan
        t_start = time.perf_counter()
        # a resumed run whose patience was already spent (killed after its last checkpoint) goes straight to test
        while self.epoch < self.n_epochs and self.step < self.total_steps and not self._patience_spent():
            train_loss = self._run_epoch(steps_log, tb, bar_on)
            row: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step, "train/loss": train_loss}
            last = self.epoch + 1 >= self.n_epochs or self.step >= self.total_steps
            if has_val and ((self.epoch + 1) % c.eval_every == 0 or last):
                vm, _ = self.evaluate("val")
                row |= {f"val/{k}": v for k, v in vm.items()}
                if self.monitor not in vm:
                    raise KeyError(f"monitor metric {self.monitor!r} not among val metrics {sorted(vm)}")
                if not self._better(vm[self.monitor]):
                    self.evals_without_improvement += 1  # the same rule as best-epoch selection
                else:
                    self.evals_without_improvement = 0
                    self.best_value, self.best_epoch, self.best_metrics = vm[self.monitor], self.epoch + 1, vm
                    if self.main:
                        self.best_weights = {
                            k: v.detach().cpu().clone() for k, v in self.eval_model.state_dict().items()
                        }
                        ck.save_checkpoint(
                            {"config": to_dict(self.cfg), "weights": self.best_weights, "epoch": self.epoch + 1,
                             "step": self.step, "metrics": vm},
                            self.run_dir / "checkpoints" / "best.ckpt",
                        )  # fmt: skip
            self.epoch += 1
            self.batch_in_epoch = 0
            self.epoch_losses = []
            if self.main:
                epochs_log.write(row)
                tb.scalars({k: v for k, v in row.items() if "/" in k}, self.step)
                self.epoch_rows.append({k: str(v) for k, v in row.items()})
                if not c.quiet:
                    keys = ["train/loss", f"val/{self.monitor}"] + [k for k in row if k.startswith("val/")]
                    keys = list(dict.fromkeys(k for k in keys if isinstance(row.get(k), float)))[:5]
                    shown = "  ".join(f"{k} {row[k]:.4g}" for k in keys)  # all of them are in epochs.csv
                    print(
                        f"[{self.cfg.name}] epoch {row['epoch']}/{self.n_epochs} step {self.step}  {shown}",
                        flush=True,
                    )
            self._save_step_checkpoint()
        self.stopped_early = (
            self._patience_spent() and self.epoch < self.n_epochs and self.step < self.total_steps
        )
        if self.stopped_early and self.main and not c.quiet:
            print(
                f"[{self.cfg.name}] early stop after epoch {self.epoch}: no better val/{self.monitor} for "
                f"{self.evals_without_improvement} evaluations",
                flush=True,
            )
        return self._finish(train_loss, time.perf_counter() - t_start, tb)

    def _finish(self, train_loss: float, seconds: float, tb: TensorBoardLog | None) -> dict[str, float]:
        weights = broadcast_object(self.best_weights if self.main else None, self.info)
        model = self._eval_weights()
        if weights is not None:
            model.load_state_dict(weights)
        metrics: dict[str, float] = {f"val/{k}": v for k, v in self.best_metrics.items()}
        split = "test" if "test" in self.datasets else ("val" if "val" in self.datasets else None)
        outputs = None
        if "test" in self.datasets:
            tm, outputs = self.evaluate("test", model)
            metrics |= {f"test/{k}": v for k, v in tm.items()}
        elif split == "val":
            _, outputs = self.evaluate("val", model)
        metrics |= {"train/loss": train_loss, "best_epoch": float(self.best_epoch), "epochs": float(self.epoch),
                    "steps": float(self.step), "stopped_early": float(self.stopped_early),
                    "train_seconds": seconds}  # fmt: skip
        self.metrics, self.model = metrics, model
        if self.main:
            tmp = self.run_dir / f"metrics.json.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(metrics, indent=2))
            os.replace(tmp, self.run_dir / "metrics.json")  # atomic: a sweep reads it as "this run finished"
            plots = []
            curves = plot_curves(CSVLog(self.run_dir / "steps.csv").read(), self.epoch_rows,
                                 self.run_dir / "plots" / "training_curves.png", self.monitor)  # fmt: skip
            plots += [curves] if curves else []
            if split is not None and outputs is not None and hasattr(self.task, "plots"):
                plots += [
                    Path(p) for p in self.task.plots(model, outputs, split, self.run_dir / "plots") or []
                ]
            checks = self.task.demo_checks(metrics) if hasattr(self.task, "demo_checks") else None
            sel = (
                f"best val {self.monitor} (epoch {self.best_epoch})"
                if self.best_epoch > 0
                else "final weights"
            )
            notes = [f"task `{self.cfg.task}`, recipe `{self.cfg.name}`, device {self.device}, "
                     f"{self.info.world_size} process(es)", f"test evaluated with the {sel}"]  # fmt: skip
            if self.stopped_early:
                notes.append(
                    f"early stop after epoch {self.epoch} of {self.n_epochs}: no better val {self.monitor} for "
                    f"{self.evals_without_improvement} evaluations (trainer.early_stop_patience)"
                )
            notes += list(self.task.report_notes()) if hasattr(self.task, "report_notes") else []
            write_report(self.run_dir, f"Run {self.cfg.name}", metrics, plots, checks, notes)
            self.plots, self.checks = plots, checks
            tb.close()
        if self.info.enabled:
            dist.barrier()
            if self.info.initialized_here:
                dist.destroy_process_group()
        return metrics
