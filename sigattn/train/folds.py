"""Run every fold (and seed) of a recipe through the one Trainer and summarise the test metrics as mean +- std.

A task has folds when it defines ``n_folds()`` (the number of folds its ``params`` give, e.g. the EEG task's
chronological k-fold, leave-one-subject-out or cross-session protocols) and selects one with ``params.fold``.
Each fold x seed is an ordinary run folder (``<out>/fold<k>_seed<s>/``) with its own report; the summary (test
metrics over folds x seeds, checkpoints selected on each fold's validation split) is printed and written to
``<out>/summary.md``. Rerunning skips the runs that already finished (their ``metrics.json``).

Example (shell)::

    sigattn folds recipes/eeg_motor_imagery/eegmmidb_lr.yaml --seeds 0 1 trainer.epochs=30
"""

from __future__ import annotations

import json
from pathlib import Path

from sigattn.tasks import get_task
from sigattn.train.config import ConfigError, load_recipe
from sigattn.train.trainer import Trainer
from sigattn.utils import summarize

__all__ = ["count_folds", "run_folds"]


def count_folds(recipe: str | Path, overrides: list[str] | None = None) -> int:
    """The number of folds of ``recipe`` (its task's ``n_folds()``); ConfigError for a task without folds."""
    cfg = load_recipe(recipe, list(overrides or []))
    task_cls = get_task(cfg.task)
    if not hasattr(task_cls, "n_folds"):
        raise ConfigError(f"{recipe}: task {cfg.task!r} has no folds (it defines no n_folds())")
    kw = {"model": cfg.model} if cfg.model is not None else {}
    return int(task_cls(cfg.params, seed=cfg.trainer.seed, **kw).n_folds())


def run_folds(recipe: str | Path, overrides: list[str] | None = None, seeds: list[int] | None = None,
              out_dir: str | Path | None = None) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Train and test every fold for each seed; returns ``{test metric: (mean, std)}``."""
    overrides = list(overrides or [])
    seeds = seeds or [0]
    cfg = load_recipe(recipe, overrides)
    n_folds = count_folds(recipe, overrides)
    out = Path(out_dir) if out_dir else Path(cfg.trainer.out_dir) / Path(recipe).stem / "folds"
    results, rows = [], []
    for fold in range(n_folds):
        for seed in seeds:
            run = out / f"fold{fold}_seed{seed}"
            done = run / "metrics.json"
            if done.is_file():
                m = json.loads(done.read_text())
            else:
                c = load_recipe(recipe, [*overrides, f"params.fold={fold}", f"trainer.seed={seed}"])
                m = Trainer(c, run_dir=run).fit()
            r = {k[5:]: float(v) for k, v in m.items() if k.startswith("test/") and k != "test/n"}
            results.append(r)
            rows.append((fold, seed, r, m.get("best_epoch", "")))
    summary = summarize(results)
    names = list(summary)
    head = "| fold | seed | " + " | ".join(names) + " | best epoch |\n|" + "---|" * (len(names) + 3) + "\n"
    body = "\n".join(
        f"| {f} | {s} | " + " | ".join(f"{r[k]:.4g}" for k in names) + f" | {b} |" for f, s, r, b in rows
    )
    means = ", ".join(f"{k} {m:.4g} +- {sd:.4g}" for k, (m, sd) in summary.items())
    text = (
        f"# Folds of {Path(recipe).name}\n\n{n_folds} folds x seeds {seeds}; overrides {overrides}; test metrics, "
        f"checkpoint selected on each fold's validation split\n\n{head}{body}\n\n**mean +- std over "
        f"{len(results)} runs: {means}**\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    print(text)
    return summary
