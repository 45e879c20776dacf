"""``sigattn demo``: train one small model per domain on built-in synthetic data and write one report.

The domains are the tasks registered in ``sigattn.tasks.TASKS`` that ship ``sigattn/tasks/<domain>/demo.yaml``
(package data): a new domain is a folder with a ``demo.yaml`` plus its registry line, nothing here. They run
in registry order (speaker, eeg, forecast) into ``runs/demo/<domain>/``; ``runs/demo/report.md`` shows, per
domain, its metrics, its ``demo_checks`` with PASS/FAIL and its plots. Without any domain demo the toy task
(its recipe below, as it has no folder) stands in.

Example:
    >>> available_demos()  # doctest: +SKIP
    ['speaker', 'eeg', 'forecast']
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from importlib import resources
from pathlib import Path
from typing import Any

from sigattn.tasks import TASKS
from sigattn.train.config import apply_overrides, read_yaml, recipe_from_dict
from sigattn.train.report import acceptance_checks, checks_table, metrics_table

__all__ = ["available_demos", "demo_recipe", "run_demo"]

TOY_DEMO: dict[str, Any] = {
    "task": "toy",
    "params": {"n_train": 384, "n_val": 64, "n_test": 128},
    "trainer": {"epochs": 5, "batch_size": 32},
    "optim": {"name": "adamw", "lr": 0.01},
    "sched": {"name": "cosine", "warmup_steps": 4},
}


def _demo_file(domain: str) -> Path | None:
    try:
        f = resources.files("sigattn.tasks").joinpath(domain, "demo.yaml")
    except (ModuleNotFoundError, TypeError):
        return None
    return Path(str(f)) if f.is_file() else None


def available_demos() -> list[str]:
    """Registered tasks (``sigattn.tasks.TASKS``, in its order) with a ``demo.yaml``; else ``["toy"]``."""
    found = [d for d in TASKS if d != "toy" and _demo_file(d) is not None]
    return found or ["toy"]


def demo_recipe(domain: str, quick: bool = False):
    """The demo recipe of ``domain`` (``quick``: a single epoch, checks may then fail)."""
    if domain == "toy":
        raw, source = {k: dict(v) if isinstance(v, dict) else v for k, v in TOY_DEMO.items()}, "toy demo"
    else:
        path = _demo_file(domain)
        if path is None:
            raise ValueError(f"no demo for domain {domain!r}; available: {', '.join(available_demos())}")
        raw, source = read_yaml(path), str(path)
    # The demo models are small: one intra-op thread is faster than several and leaves cores to the loaders.
    overrides = ["trainer.num_threads=1"] if raw.get("trainer", {}).get("num_threads") is None else []
    overrides += ["trainer.epochs=1", "trainer.max_steps=null"] if quick else []
    raw = apply_overrides(raw, overrides)
    return recipe_from_dict(raw, name=f"demo-{domain}", source=source)


def _run_one(domain: str, out: Path, quick: bool) -> dict[str, Any]:
    from sigattn.train.trainer import Trainer

    run_dir = out / domain
    if run_dir.is_dir() and (run_dir / "config.yaml").exists():  # a previous demo run: start clean
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"domain": domain, "run_dir": run_dir}
    try:
        trainer = Trainer(demo_recipe(domain, quick), run_dir=run_dir)
        res["metrics"] = trainer.fit()
        res["checks"] = trainer.checks or {}
        res["plots"] = trainer.plots
        res["error"] = None
    except Exception as e:  # one broken domain must not hide the others
        res.update(metrics={}, checks={}, plots=[], error=f"{type(e).__name__}: {e}")
        res["traceback"] = traceback.format_exc()
    res["seconds"] = time.perf_counter() - t0
    return res


def run_demo(
    out_dir: str | Path = "runs/demo", only: list[str] | None = None, quick: bool = False
) -> tuple[Path, list]:
    """Train each demo, then write ``<out_dir>/report.md``; returns its path and the per-domain results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    domains = only or available_demos()
    valid = set(available_demos()) | {"toy"}
    for d in domains:
        if d not in valid:
            raise ValueError(f"unknown demo domain {d!r}; valid: {', '.join(sorted(valid))}")
    results = []
    for d in domains:
        print(f"== demo: {d}", flush=True)
        results.append(_run_one(d, out, quick))
        r = results[-1]
        status = "error: " + r["error"] if r["error"] else _count(r["checks"]) + " checks pass"
        print(f"== demo: {d} done in {r['seconds']:.1f} s ({status})", flush=True)
    return write_demo_report(out, results, quick), results


def _count(checks: dict[str, bool]) -> str:
    """``"k/n"`` over the acceptance checks (diagnostics are reported but not counted)."""
    acc = acceptance_checks(checks)
    return f"{sum(acc.values())}/{len(acc)}"


def write_demo_report(out: Path, results: list[dict], quick: bool = False) -> Path:
    """``report.md`` with a summary table and, per domain, metrics, checks and embedded plots."""
    lines = ["# sigattn demo", ""]
    lines += [
        "Each domain trains one small model on built-in synthetic data (`sigattn/synthetic/`) on this machine"
        + (" (`--quick`: one epoch each)." if quick else "."),
        "",
        "| domain | time (s) | checks | status |",
        "|---|---|---|---|",
    ]
    for r in results:
        acc = acceptance_checks(r["checks"])
        status = "error" if r["error"] else ("all pass" if all(acc.values()) else "some checks fail")
        lines.append(f"| {r['domain']} | {r['seconds']:.1f} | {_count(r['checks'])} | {status} |")
    total = sum(r["seconds"] for r in results)
    lines += ["", f"Total: {total:.1f} s (budget about 3 minutes of CPU for the whole demo).", ""]
    lines += [
        "Checks count PASS/FAIL acceptance checks; `(diagnostic)` lines are reported yes/no and not counted.",
        "",
    ]
    for r in results:
        lines += [f"## {r['domain']}", ""]
        if r["error"]:
            lines += ["Training failed:", "", "```", r.get("traceback", r["error"]).rstrip(), "```", ""]
            continue
        lines += [f"Run folder: `{r['run_dir']}` ({r['seconds']:.1f} s).", ""]
        lines += ["### Metrics", "", metrics_table(r["metrics"]), ""]
        if r["checks"]:
            lines += ["### Checks", "", checks_table(r["checks"]), ""]
        if r["plots"]:
            lines += ["### Plots", ""]
            for p in r["plots"]:
                rel = os.path.relpath(Path(p).resolve(), out.resolve())
                lines += [f"![{r['domain']} {Path(p).stem}]({Path(rel).as_posix()})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
