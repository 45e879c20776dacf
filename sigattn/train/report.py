"""Run reports: training-curve PNGs (matplotlib, imported lazily) and a ``report.md`` with metrics and plots.

Example:
    >>> md = metrics_table({"test/acc": 0.91, "val/acc": 0.93})
    >>> md.splitlines()[0]
    '| split | metric | value |'
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "DIAGNOSTIC",
    "acceptance_checks",
    "applicable_checks",
    "plot_curves",
    "metrics_table",
    "checks_table",
    "write_report",
]

# A check whose name starts with this prefix is a diagnostic: reported (yes/no), never counted as a failure.
# A check whose value is None does not apply to the run (e.g. a synthetic-data check on real data): it is left
# out of reports and counts. Tasks may also simply omit such checks.
DIAGNOSTIC = "(diagnostic)"


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def plot_curves(
    step_rows: list[dict], epoch_rows: list[dict], out_png: str | os.PathLike, monitor: str | None = None
) -> Path | None:
    """Loss and learning rate per step, the monitored validation metric per epoch (``val/<monitor>``, else the
    first ``val/`` column); ``None`` without matplotlib or data."""
    if not step_rows:
        return None
    from sigattn.plotting import pyplot, save_png

    try:
        plt = pyplot()
    except ImportError:
        return None
    steps = [_num(r.get("step")) for r in step_rows]
    cols = [k for k in (epoch_rows[0] if epoch_rows else {}) if k.startswith("val/")]
    val_keys = [f"val/{monitor}"] if f"val/{monitor}" in cols else cols[:1]  # one scale per panel
    ncols = 3 if val_keys else 2
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.2))
    axes[0].plot(steps, [_num(r.get("loss")) for r in step_rows], lw=1)
    axes[0].set(title="training loss", xlabel="step")
    axes[1].plot(steps, [_num(r.get("lr")) for r in step_rows], lw=1, color="tab:orange")
    axes[1].set(title="learning rate", xlabel="step")
    if val_keys:
        ep = [_num(r.get("epoch")) for r in epoch_rows]
        k = val_keys[0]
        axes[2].plot(ep, [_num(r.get(k)) for r in epoch_rows], marker="o", ms=3, color="tab:green")
        axes[2].set(title=f"validation {k[4:]}", xlabel="epoch")
    for a in axes:
        a.grid(alpha=0.3)
    return save_png(fig, out_png)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def metrics_table(metrics: dict[str, Any]) -> str:
    """Markdown table of ``split/metric`` keys (keys without a split go under ``run``)."""
    lines = ["| split | metric | value |", "|---|---|---|"]
    for k, v in metrics.items():
        split, _, name = k.partition("/") if "/" in k else ("run", "", k)
        lines.append(f"| {split} | {name} | {_fmt(v)} |")
    return "\n".join(lines)


def applicable_checks(checks: dict[str, bool | None] | None) -> dict[str, bool]:
    """The checks that apply to the run: all but those whose value is ``None``."""
    return {k: bool(v) for k, v in (checks or {}).items() if v is not None}


def acceptance_checks(checks: dict[str, bool | None]) -> dict[str, bool]:
    """The checks that decide pass/fail: the applicable ones but the diagnostics (``(diagnostic)`` names)."""
    return {k: v for k, v in applicable_checks(checks).items() if not k.startswith(DIAGNOSTIC)}


def checks_table(checks: dict[str, bool | None]) -> str:
    """Markdown table of the applicable acceptance checks (PASS/FAIL) and diagnostics (yes/no, uncounted)."""
    lines = ["| check | result |", "|---|---|"]
    for k, ok in applicable_checks(checks).items():
        result = ("yes" if ok else "no") if k.startswith(DIAGNOSTIC) else ("PASS" if ok else "FAIL")
        lines.append(f"| {k} | {result} |")
    return "\n".join(lines)


def write_report(
    run_dir: str | os.PathLike,
    title: str,
    metrics: dict[str, Any],
    plots: list[Path],
    checks: dict[str, bool | None] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write ``run_dir/report.md``: notes, metrics, the checks that apply and the plots (relative paths)."""
    run_dir = Path(run_dir)
    checks = applicable_checks(checks)
    parts = [f"# {title}", ""]
    for n in notes or []:
        parts.append(f"- {n}")
    if notes:
        parts.append("")
    parts += ["## Metrics", "", metrics_table(metrics), ""]
    if checks:
        parts += ["## Checks", "", checks_table(checks), ""]
    if plots:
        parts += ["## Plots", ""]
        for p in plots:
            rel = os.path.relpath(Path(p).resolve(), run_dir.resolve())
            parts += [f"![{Path(p).stem}]({rel})", ""]
    out = run_dir / "report.md"
    out.write_text("\n".join(parts))
    return out
