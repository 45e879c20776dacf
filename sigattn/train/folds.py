"""Every fold (and seed) of a recipe, as a sweep, with the test metrics summarised as mean +- std.

A task has folds when it defines ``n_folds()`` (the number of folds its ``params`` give, e.g. the EEG task's
chronological k-fold, leave-one-subject-out or cross-session protocols) and selects one with ``params.fold``.
:func:`run_folds` is a thin alias of a sweep with a fold axis (``sigattn folds RECIPE`` is
``sigattn sweep RECIPE --folds all --out <out_dir>/<recipe>/folds``): each fold x seed is an ordinary run folder
(``<out>/runs/<id>/``, the sweep's id, e.g. ``seed=0_fold=2-1a2b3c``) with its own report, ``<out>/index.json``
lists them, and rerunning skips the runs that finished, resumes interrupted ones and retries failed ones. The
summary (test metrics over folds x seeds, checkpoints selected on each fold's validation split) is printed and
written to ``<out>/summary.md``, next to the sweep's ``results.md``.

Example (shell)::

    sigattn folds recipes/eeg_motor_imagery/eegmmidb_lr.yaml --seeds 0 1 trainer.epochs=30
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sigattn.train.config import ConfigError, load_recipe
from sigattn.utils import summarize

__all__ = ["FoldRunsFailed", "count_folds", "fold_count", "run_folds"]


class FoldRunsFailed(RuntimeError):
    """Some fold runs failed (recorded in the sweep's index.json); the summary covers the finished ones."""


def fold_count(cfg: Any) -> int | None:
    """The number of folds of a loaded recipe (its task's ``n_folds()`` for its ``params``), or ``None`` for a
    task without folds. The one place that asks a task for its folds (:class:`~sigattn.train.sweep.Sweep`
    uses it for ``folds: all``)."""
    from sigattn.tasks import get_task

    task_cls = get_task(cfg.task)
    if not hasattr(task_cls, "n_folds"):
        return None
    kw = {"model": cfg.model} if cfg.model is not None else {}
    return int(task_cls(cfg.params, seed=cfg.trainer.seed, **kw).n_folds())


def count_folds(recipe: str | Path, overrides: list[str] | None = None) -> int:
    """The number of folds of ``recipe`` (its task's ``n_folds()``); ConfigError for a task without folds."""
    cfg = load_recipe(recipe, list(overrides or []))
    n = fold_count(cfg)
    if n is None:
        raise ConfigError(f"{recipe}: task {cfg.task!r} has no folds (it defines no n_folds())")
    return n


def run_folds(recipe: str | Path, overrides: list[str] | None = None, seeds: list[int] | None = None,
              out_dir: str | Path | None = None) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Train and test every fold for each seed (a sweep with ``folds: all``); returns ``{test metric: (mean,
    std)}`` over the finished runs. Raises :class:`FoldRunsFailed` (after writing the summary) when a run
    failed."""
    from sigattn.train.sweep import sweep_from_recipe

    overrides = list(overrides or [])
    seeds = list(seeds or [0])
    cfg = load_recipe(recipe, overrides)
    n_folds = count_folds(recipe, overrides)
    out = Path(out_dir) if out_dir else Path(cfg.trainer.out_dir) / Path(recipe).stem / "folds"
    sweep = sweep_from_recipe(recipe, {}, name=f"{Path(recipe).stem}_folds", seeds=seeds, folds="all",
                              overrides=overrides, out=str(out))  # fmt: skip
    sweep.run()
    results, rows, failed = [], [], []
    for r in sweep.runs:  # fold-major, then seed
        done = sweep.dir / r.dir / "metrics.json"
        if not done.is_file():
            failed.append(r)
            continue
        m = json.loads(done.read_text())
        res = {k[5:]: float(v) for k, v in m.items() if k.startswith("test/") and k != "test/n"}
        results.append(res)
        rows.append((r.values["fold"], r.values["seed"], res, m.get("best_epoch", "")))
    text = f"# Folds of {Path(recipe).name}\n\n{n_folds} folds x seeds {seeds}; overrides {overrides}; "
    text += "test metrics, checkpoint selected on each fold's validation split\n\n"
    summary: dict[str, tuple[float, float]] = {}
    if results:
        summary = summarize(results)
        names = list(summary)
        head = (
            "| fold | seed | " + " | ".join(names) + " | best epoch |\n|" + "---|" * (len(names) + 3) + "\n"
        )
        body = "\n".join(
            f"| {f} | {s} | " + " | ".join(f"{r[k]:.4g}" for k in names) + f" | {b} |" for f, s, r, b in rows
        )
        means = ", ".join(f"{k} {m:.4g} +- {sd:.4g}" for k, (m, sd) in summary.items())
        text += f"{head}{body}\n\n**mean +- std over {len(results)} runs: {means}**\n"
    if failed:
        lines = "\n".join(
            f"- fold {r.values['fold']} seed {r.values['seed']} (`{r.dir}`): {r.error}" for r in failed
        )
        text += f"\n{len(failed)} of {len(sweep.runs)} runs failed (left out above):\n\n{lines}\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    print(text)
    if failed:
        raise FoldRunsFailed(
            f"{len(failed)} of {len(sweep.runs)} fold runs failed; see {out / 'summary.md'} and the runs' "
            f"sweep.log; rerun to retry them"
        )
    return summary
