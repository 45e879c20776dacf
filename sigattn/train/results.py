"""Results of a sweep: one tidy table of its runs (``results.csv``), mean +- std per cell, paired comparisons
with a baseline, plots, and a ``results.md`` report.

A sweep folder holds ``index.json`` (written by the sweep runner): its ``axes`` (the varied settings, in order),
``repeat_axes`` (repetitions, by default ``seed`` and ``fold``), an optional ``baseline`` (reference values of
some axes), optional ``metrics`` (which to report first) and ``metric_modes`` (direction overrides), and its
``runs`` (``id``, ``dir``, ``values``, ``status``, ``error``, ``seconds``). Each finished run's metrics are in
``<dir>/metrics.json``.

A *cell* is one combination of the axes' values; its repeats (seed x fold) are averaged: mean, sample std
(``ddof=1``) and n. A cell's *baseline cell* has the same values on every axis but those named in the
baseline, which take the baseline values; the two are compared run by run, matched on the repeat axes, with a
two-sided paired t-test (``scipy.stats.ttest_rel``).

pandas is imported with this module (the ``experiments`` extra: without it, importing the module raises
ImportError naming pandas, which the sweep runner reports); matplotlib only when plots are drawn, and without it
the report says so instead of linking plots.

Example:
    >>> metric_mode("test/mse"), metric_mode("test/balanced_accuracy"), metric_mode("best_epoch")
    ('min', 'max', None)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sigattn.errors import UserError

__all__ = [
    "STATUSES",
    "Cell",
    "CellStat",
    "Comparison",
    "SweepResults",
    "metric_mode",
    "load_index",
    "collect",
    "analyze",
    "plot_results",
    "results_markdown",
    "write_results",
    "format_summary",
]

STATUSES = ("done", "failed", "missing", "pending", "running")
_LOWER = set("mse mae rmse mape smape loss eer dcf mindcf cllr error wape nll".split())
_HIGHER = set("acc accuracy balanced_accuracy kappa auc f1 precision recall r2 corr".split())
# Trainer bookkeeping: columns of the table, never reported as metrics unless named
_BOOKKEEPING = {"best_epoch", "epochs", "steps", "train_seconds", "stopped_early"}
# sizes of the evaluated split (test/n, test/n_windows): columns of the table, not reported unless named
_COUNTS = {"n", "n_windows", "n_trials", "n_items"}
_DASH = "–"


# ---------------------------------------------------------------------------------------------------------------
# metric direction


def metric_mode(name: str, overrides: dict[str, str] | None = None) -> str | None:
    """``"min"`` when lower is better, ``"max"`` when higher is better, ``None`` when the name does not say.

    ``overrides`` (``index.json``'s ``metric_modes``) wins. Otherwise the part after the last ``/`` is looked
    up whole (``balanced_accuracy``), then by its ``_``/``-`` separated words (``f1_macro``, ``min_dcf``);
    words of both kinds, or none, give ``None``."""
    if overrides and name in overrides:
        return overrides[name]
    base = name.rsplit("/", 1)[-1].lower()
    if base in _LOWER:
        return "min"
    if base in _HIGHER:
        return "max"
    words = set(re.split(r"[_\-.@ ]+", base))
    low, high = bool(words & _LOWER), bool(words & _HIGHER)
    if low != high:
        return "min" if low else "max"
    return None


# ---------------------------------------------------------------------------------------------------------------
# values: grouping keys, matching, display


def _norm(v: Any) -> Any:
    """A hashable grouping key for an axis value: lists/dicts as JSON text, bools tagged (``True != 1``)."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (list, tuple, dict)):
        return ("json", json.dumps(v, sort_keys=True))
    if isinstance(v, float) and math.isnan(v):
        return ("nan",)
    return v


def _tidy(v: Any) -> Any:
    """An axis value as it goes into the table: lists and dicts as JSON text, the rest unchanged."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, tuple, dict)) else v


def _show(v: Any) -> str:
    """An axis value in text: JSON for lists, ``null`` for None."""
    if v is None:
        return "null"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _matches(v: Any, given: Any) -> bool:
    """Whether axis value ``v`` is the baseline value ``given`` (the CLI gives text: ``"96"`` is 96)."""
    if _norm(v) == _norm(_tidy(given)):
        return True
    if not isinstance(given, str):
        return False
    if given in (_show(v), str(v)):
        return True
    if v is None:
        return given.strip().lower() in ("null", "none", "~")
    if isinstance(v, bool):
        return given.strip().lower() == str(v).lower()
    try:
        parsed = json.loads(given)
    except ValueError:
        parsed = given
    if _norm(_tidy(parsed)) == _norm(v):
        return True
    if isinstance(v, (int, float)):
        try:
            return float(given) == float(v)
        except ValueError:
            return False
    return False


def _g(v: float) -> str:
    """A number to 4 significant digits; ``–`` when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return _DASH
    return f"{v:.4g}"


def _cellmd(s: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(s).replace("|", "\\|").replace("\n", " ")


def _first_error_line(err: Any) -> str:
    """The line of an error that says what happened: the first non-empty one, or for a traceback the last."""
    if not err:
        return ""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


# ---------------------------------------------------------------------------------------------------------------
# index.json and the table of runs


def _index_path(sweep_dir: str | os.PathLike) -> Path:
    d = Path(sweep_dir)
    if not d.is_dir():
        raise UserError(f"{d}: no such sweep folder")
    p = d / "index.json"
    if not p.is_file():
        raise UserError(f"{p}: no index.json (is {d} a sweep folder?)")
    return p


def load_index(sweep_dir: str | os.PathLike) -> dict[str, Any]:
    """``SWEEP_DIR/index.json``, checked: a ``UserError`` naming the file and the key for a missing file,
    malformed JSON or a key of the wrong type. Fills the defaults (``repeat_axes`` seed and fold)."""
    p = _index_path(sweep_dir)
    try:
        index = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{p}: not readable JSON ({' '.join(str(e).split())})") from None
    if not isinstance(index, dict):
        raise UserError(f"{p}: expected a JSON object, got {type(index).__name__}")
    index = dict(index)

    def strings(key: str, default: list[str]) -> list[str]:
        v = index.get(key, default)
        v = default if v is None else v
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise UserError(f"{p}: '{key}' must be a list of names, got {v!r}")
        return list(v)

    index["axes"] = strings("axes", [])
    index["repeat_axes"] = strings("repeat_axes", ["seed", "fold"])
    both = [a for a in index["axes"] if a in index["repeat_axes"]]
    if both:
        raise UserError(f"{p}: {both[0]!r} is both in 'axes' and in 'repeat_axes'")
    if index.get("metrics") is not None:
        index["metrics"] = strings("metrics", [])
    baseline = index.get("baseline")
    if baseline is not None and not isinstance(baseline, dict):
        raise UserError(f"{p}: 'baseline' must be an object {{axis: value}} or null, got {baseline!r}")
    modes = index.get("metric_modes") or {}
    if not isinstance(modes, dict) or any(m not in ("min", "max") for m in modes.values()):
        raise UserError(f"{p}: 'metric_modes' must map metric names to 'min' or 'max', got {modes!r}")
    index["metric_modes"] = modes
    runs = index.get("runs")
    if not isinstance(runs, list):
        raise UserError(f"{p}: 'runs' must be a list of runs, got {type(runs).__name__}")
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or "id" not in r:
            raise UserError(f"{p}: runs[{i}] must be an object with an 'id', got {r!r}")
        if not isinstance(r.get("values") or {}, dict):
            raise UserError(f"{p}: runs[{i}] ({r['id']}): 'values' must be an object, got {r['values']!r}")
    index.setdefault("name", Path(sweep_dir).resolve().name)
    return index


def _run_dir(sweep_dir: Path, run: dict) -> Path:
    d = Path(str(run.get("dir") or Path("runs") / str(run["id"])))
    return d if d.is_absolute() else sweep_dir / d


def _read_metrics(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(metrics, None) or (None, why not)."""
    if not path.is_file():
        return None, f"no metrics.json ({path})"
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"unreadable metrics.json ({path}: {' '.join(str(e).split())})"
    if not isinstance(m, dict):
        return None, f"metrics.json is not a JSON object ({path})"
    out: dict[str, Any] = {}
    for k, v in m.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)):
            out[k] = float(v)
        elif v is None:
            out[k] = math.nan
        else:
            out[k] = v  # kept as it is; only numeric columns are reported
    return out, None


def _base_columns(index: dict) -> list[str]:
    reps = [r for r in index["repeat_axes"] if r not in index["axes"]]
    cols = ["id", "status", *index["axes"], *reps, "seconds", "error"]
    return list(dict.fromkeys(cols))


def _metric_column(k: str, base: list[str]) -> str:
    return f"metric:{k}" if k in base else k


def _gather(sweep_dir: Path, index: dict) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of the table (a done run's row holds exactly the keys of its metrics.json) and the columns."""
    base = _base_columns(index)
    rows: list[dict[str, Any]] = []
    metric_cols: dict[str, None] = {}
    for run in index["runs"]:
        values = run.get("values") or {}
        status = str(run.get("status") or "pending")
        row: dict[str, Any] = {"id": str(run["id"]), "status": status}
        for a in base[2:-2]:
            row[a] = _tidy(values.get(a))
        row["seconds"] = float(run["seconds"]) if isinstance(run.get("seconds"), (int, float)) else math.nan
        row["error"] = run.get("error")
        path = _run_dir(sweep_dir, run) / "metrics.json"
        if status == "done" or path.is_file():  # the folder decides: a run that finished after its sweep died
            metrics, why = _read_metrics(path)
            if metrics is None:
                if status == "done":
                    row["status"], row["error"] = "missing", why
            else:
                row["status"], row["error"] = "done", None
                for k, v in metrics.items():
                    col = _metric_column(k, base)
                    metric_cols[col] = None
                    row[col] = v
        rows.append(row)
    return rows, base + list(metric_cols)


def _frame(rows: list[dict[str, Any]], columns: list[str], index: dict) -> Any:
    frame = pd.DataFrame(rows, columns=columns)
    for a in _base_columns(index)[2:-2]:  # axis values as given: 0 stays 0 beside a null, not 0.0
        frame[a] = pd.Series([r.get(a) for r in rows], index=frame.index, dtype=object)
    for c in columns[len(_base_columns(index)) :]:
        if all(isinstance(v, float) for v in frame[c]):
            frame[c] = frame[c].astype(float)
    return frame


def collect(sweep_dir: str | os.PathLike, index: dict[str, Any] | None = None) -> Any:
    """One row per run of the sweep, as a pandas DataFrame, also written to ``SWEEP_DIR/results.csv``.

    Columns: ``id``, ``status``, each axis (in ``axes`` order), the repeat axes (``seed``, ``fold``),
    ``seconds``, ``error``, then every key of the runs' ``metrics.json`` (first-seen order; a key equal to one
    of the columns before becomes ``metric:<key>``). Runs that are not done keep their row with NaN metrics. A
    done run without a readable ``metrics.json`` gets status ``missing`` and the reason in ``error``. Lists
    and objects among the axis values are written as JSON text."""
    sweep_dir = Path(sweep_dir)
    index = load_index(sweep_dir) if index is None else index
    rows, columns = _gather(sweep_dir, index)
    frame = _frame(rows, columns, index)
    frame.to_csv(sweep_dir / "results.csv", index=False)
    return frame


# ---------------------------------------------------------------------------------------------------------------
# cells, statistics, comparisons


@dataclass
class CellStat:
    """One metric over one cell's done runs with a finite value: mean, sample std (``ddof=1``; NaN for n < 2)."""

    mean: float
    std: float
    n: int
    values: list[float]
    ids: list[str]


@dataclass
class Cell:
    """One combination of the axes' values and its runs."""

    key: tuple
    values: dict[str, Any]  # axis -> value as in index.json (lists as JSON text)
    run_ids: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    stats: dict[str, CellStat] = field(default_factory=dict)
    best: set[str] = field(default_factory=set)  # metrics for which this cell is the best of its group
    group: tuple = ()
    is_baseline: bool = False


@dataclass
class Comparison:
    """Cell minus its baseline cell for one metric, over runs paired on the repeat axes."""

    cell: Cell
    baseline: Cell | None
    metric: str
    n_pairs: int = 0
    mean_diff: float = math.nan
    baseline_mean: float = math.nan  # over the paired baseline runs
    rel_diff_pct: float = math.nan  # 100 * mean_diff / baseline_mean
    t: float = math.nan
    p: float = math.nan
    left_out: int = 0  # runs with a value, in either cell, whose repeat has no partner
    left_out_ids: list[str] = field(default_factory=list)
    pairs: list[tuple[Any, float, float]] = field(default_factory=list)  # (repeat key, cell, baseline)
    note: str = ""  # why there is no p-value where there are 2+ pairs, or what its unit is (folds)


@dataclass
class SweepResults:
    """Everything the report shows; built by :func:`analyze`."""

    sweep_dir: Path
    name: str
    index: dict[str, Any]
    frame: Any  # pandas DataFrame of :func:`collect`
    axes: list[str]
    repeat_axes: list[str]
    metrics: list[str]  # reported, in order
    columns: dict[str, str]  # metric -> its column in the frame
    modes: dict[str, str | None]
    baseline: dict[str, Any] | None  # axis -> the axis value (as in index.json)
    cells: list[Cell]
    comparisons: list[Comparison]
    excluded: list[tuple[str, str, str]]  # (run id, metric, why) of done runs left out of a statistic
    axis_values: dict[str, list[Any]]  # every axis' and repeat axis' values, first-seen order
    plots: list[Path] = field(default_factory=list)
    plot_notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return int((self.frame["status"] == status).sum()) if len(self.frame) else 0

    @property
    def varying(self) -> list[str]:
        """The axes with more than one value (the others are constant over the sweep)."""
        return [a for a in self.axes if len(self.axis_values[a]) > 1]


def _numeric_columns(frame: Any, cols: list[str]) -> list[str]:
    return [c for c in cols if pd.api.types.is_float_dtype(frame[c])]


def _choose_metrics(index: dict, frame: Any, metrics: list[str] | str | None) -> tuple[list[str], dict]:
    base = _base_columns(index)
    known = [c for c in frame.columns if c not in base]
    # metric name -> column (a metric colliding with a table column lives under metric:<name>)
    by_name = {(c[len("metric:") :] if c.startswith("metric:") else c): c for c in known}
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    chosen = list(metrics) if metrics is not None else index.get("metrics")
    if chosen:
        if by_name:  # with no run finished yet nothing can be checked
            unknown = [m for m in chosen if m not in by_name]
            if unknown:
                raise UserError(
                    f"metric {unknown[0]!r} is in no run's metrics.json under {index['_dir']}; "
                    f"metrics: {', '.join(by_name)}"
                )
        return list(dict.fromkeys(chosen)), {m: by_name.get(m, m) for m in chosen}
    numeric = set(_numeric_columns(frame, known))
    names = [m for m, c in by_name.items() if c in numeric]
    names = [m for m in names if m.rsplit("/", 1)[-1] not in _COUNTS]
    for prefix in ("test/", "val/"):
        picked = [m for m in names if m.startswith(prefix)]
        if picked:
            return picked, {m: by_name[m] for m in picked}
    picked = [m for m in names if m not in _BOOKKEEPING]
    return picked, {m: by_name[m] for m in picked}


def _resolve_baseline(
    baseline: dict[str, Any] | None, axes: list[str], axis_values: dict[str, list], where: Path
) -> dict[str, Any] | None:
    if not baseline:
        return None
    out = {}
    for k, given in baseline.items():
        if k not in axes:
            raise UserError(
                f"baseline key {k!r} is not an axis of the sweep {where}; axes: {', '.join(axes) or '(none)'}"
            )
        seen = axis_values[k]
        exact = [v for v in seen if _norm(v) == _norm(_tidy(given))]
        found = exact or [v for v in seen if _matches(v, given)]
        if not found:
            raise UserError(
                f"baseline {k}={_show(given)}: no run of {where} has this value; "
                f"values of {k}: {', '.join(_show(v) for v in seen) or '(none)'}"
            )
        if len(found) > 1:
            raise UserError(
                f"baseline {k}={_show(given)} is ambiguous in {where}: it matches "
                f"{', '.join(repr(v) for v in found)}"
            )
        out[k] = found[0]
    return out


def _stat(values: list[float], ids: list[str]) -> CellStat:
    import numpy as np

    n = len(values)
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean()) if n else math.nan
    std = float(arr.std(ddof=1)) if n >= 2 else math.nan
    return CellStat(mean, std, n, list(values), list(ids))


def _compare(
    cell: Cell, base: Cell | None, metric: str, frame_rows: dict, repeat_axes: list[str]
) -> Comparison:
    """Pair the two cells' runs with a finite value on the repeat axes; a repeat key held by two runs of one
    cell pairs neither (both are left out)."""
    c = Comparison(cell=cell, baseline=base, metric=metric)
    if base is None:
        return c

    def keyed(cl: Cell) -> tuple[dict, list[str]]:
        st = cl.stats.get(metric)
        groups: dict[Any, list[tuple[str, float]]] = {}
        for rid, v in zip(st.ids, st.values) if st else ():
            rkey = tuple(_norm(frame_rows[rid].get(a)) for a in repeat_axes)
            groups.setdefault(rkey, []).append((rid, v))
        single = {k: g[0] for k, g in groups.items() if len(g) == 1}
        dup = [rid for g in groups.values() if len(g) > 1 for rid, _ in g]
        return single, dup

    mine, dup_a = keyed(cell)
    theirs, dup_b = keyed(base)
    common = [k for k in mine if k in theirs]
    c.left_out_ids = [mine[k][0] for k in mine if k not in theirs]
    c.left_out_ids += [theirs[k][0] for k in theirs if k not in mine] + dup_a + dup_b
    c.left_out = len(c.left_out_ids)
    c.n_pairs = len(common)
    c.pairs = [(k, mine[k][1], theirs[k][1]) for k in common]
    if not common:
        return c
    import numpy as np

    a = np.array([x for _, x, _ in c.pairs])
    b = np.array([y for _, _, y in c.pairs])
    c.mean_diff = float((a - b).mean())
    c.baseline_mean = float(b.mean())
    c.rel_diff_pct = 100.0 * c.mean_diff / c.baseline_mean if c.baseline_mean != 0 else math.nan
    if "fold" in repeat_axes:
        # seeds of one fold share its test set: not independent pairs. The unit of the test is the fold
        # (its seeds averaged), as soon as some fold holds more than one pair.
        at = repeat_axes.index("fold")
        by_fold: dict[Any, list[int]] = {}
        for j, (k, _, _) in enumerate(c.pairs):
            by_fold.setdefault(k[at], []).append(j)
        if len(by_fold) > 1 and len(by_fold) < len(c.pairs):
            a = np.array([a[js].mean() for js in by_fold.values()])
            b = np.array([b[js].mean() for js in by_fold.values()])
            c.note = f"tested over {len(by_fold)} folds, each the mean of its seeds (they share its test set)"
    d = a - b
    if len(d) >= 2 and np.ptp(d) <= 1e-12 * np.abs(d).max():
        c.note = "all differences equal: no t-test"  # sd(d) is 0 up to rounding; t would be huge or NaN
    elif len(d) >= 2:
        import warnings

        from scipy import stats

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # identical differences: t and p are NaN
            res = stats.ttest_rel(a, b)
        c.t, c.p = float(res.statistic), float(res.pvalue)
    return c


def analyze(
    sweep_dir: str | os.PathLike, baseline: dict[str, Any] | None = None, metrics: list[str] | None = None
) -> SweepResults:
    """Collect the runs (writing ``results.csv``) and compute the per-cell statistics, the best cell per group
    and the paired comparisons. ``baseline`` and ``metrics`` override ``index.json``'s."""
    sweep_dir = Path(sweep_dir)
    index = load_index(sweep_dir)
    index["_dir"] = str(sweep_dir)
    records, columns_all = _gather(sweep_dir, index)
    frame = _frame(records, columns_all, index)
    frame.to_csv(sweep_dir / "results.csv", index=False)
    axes, reps = index["axes"], [r for r in index["repeat_axes"] if r not in index["axes"]]
    rows = {r["id"]: r for r in records}

    axis_values: dict[str, list] = {}
    for a in axes + reps:
        seen: dict[Any, Any] = {}
        for r in records:
            seen.setdefault(_norm(r.get(a)), r.get(a))
        axis_values[a] = list(seen.values())

    chosen, columns = _choose_metrics(index, frame, metrics)
    given = dict(baseline) if baseline is not None else index.get("baseline")
    base = _resolve_baseline(given, axes, axis_values, sweep_dir / "index.json")
    modes = {m: metric_mode(m, index["metric_modes"]) for m in chosen}

    cells: dict[tuple, Cell] = {}
    for r in records:
        key = tuple(_norm(r.get(a)) for a in axes)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell(key=key, values={a: r.get(a) for a in axes})
            cell.group = tuple(k for a, k in zip(axes, key) if a not in base) if base else ()
            cell.is_baseline = bool(base) and all(_norm(cell.values[a]) == _norm(v) for a, v in base.items())
        cell.run_ids.append(r["id"])
        cell.statuses[r["status"]] += 1

    excluded: list[tuple[str, str, str]] = []
    for cell in cells.values():
        for m in chosen:
            col = columns[m]
            vals, ids = [], []
            for rid in cell.run_ids:
                r = rows[rid]
                if r["status"] != "done":
                    continue
                v = r.get(col)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    excluded.append((rid, m, "absent from metrics.json" if col not in r else repr(v)))
                    continue
                vals.append(float(v))
                ids.append(rid)
            cell.stats[m] = _stat(vals, ids)

    for m in chosen:
        mode = modes[m]
        if mode is None:
            continue
        groups: dict[tuple, list[Cell]] = {}
        for cell in cells.values():
            if cell.stats[m].n:
                groups.setdefault(cell.group, []).append(cell)
        for members in groups.values():
            if len(members) < 2:
                continue
            pick = min if mode == "min" else max
            best = pick(c.stats[m].mean for c in members)
            for c in members:
                if c.stats[m].mean == best:
                    c.best.add(m)

    comparisons: list[Comparison] = []
    if base:
        for cell in cells.values():
            if cell.is_baseline:
                continue
            bkey = tuple(_norm(base[a]) if a in base else k for a, k in zip(axes, cell.key))
            for m in chosen:
                comparisons.append(_compare(cell, cells.get(bkey), m, rows, reps))

    return SweepResults(
        sweep_dir=sweep_dir,
        name=str(index.get("name")),
        index=index,
        frame=frame,
        axes=axes,
        repeat_axes=reps,
        metrics=chosen,
        columns=columns,
        modes=modes,
        baseline=base,
        cells=list(cells.values()),
        comparisons=comparisons,
        excluded=excluded,
        axis_values=axis_values,
    )


# ---------------------------------------------------------------------------------------------------------------
# plots


def _numeric_axis(res: SweepResults) -> str | None:
    """The first axis whose values are all numbers (not bools), with at least two of them."""
    for a in res.varying:
        vals = res.axis_values[a]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
            return a
    return None


def _label(cell: Cell, axes: list[str]) -> str:
    return ", ".join(f"{a}={_show(cell.values[a])}" for a in axes) or "all runs"


def _slug(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric).strip("_") or "metric"


def plot_results(
    res: SweepResults, out_dir: str | os.PathLike | None = None, max_metrics: int = 4
) -> list[Path]:
    """One PNG per reported metric (the first ``max_metrics``) under ``out_dir`` (``SWEEP_DIR/plots``).

    With a numeric axis (e.g. ``params.pred_len``): the metric against it, mean with std error bars, one line
    per combination of the other varying axes, one panel per ``recipe`` when the sweep has several.
    Otherwise one column per cell: each run's value as a dot, the mean +- std as a bar. Returns the paths
    written; notes on what was not drawn go to ``res.plot_notes``."""
    out_dir = Path(out_dir) if out_dir is not None else res.sweep_dir / "plots"
    try:
        from sigattn.plotting import pyplot

        plt = pyplot()
    except ImportError:
        res.plot_notes.append("no plots: matplotlib is not installed (the `plots` or `experiments` extra)")
        return []
    paths = []
    for m in res.metrics[:max_metrics]:
        if not any(c.stats[m].n for c in res.cells):
            res.plot_notes.append(f"{m}: no finished run has a value, nothing to plot")
            continue
        x_axis = _numeric_axis(res)
        fig = _line_figure(plt, res, m, x_axis) if x_axis else _dot_figure(plt, res, m)
        from sigattn.plotting import save_png

        paths.append(save_png(fig, out_dir / f"{_slug(m)}.png"))
    res.plots = paths
    return paths


def _repeat_words(res: SweepResults) -> str:
    return " x ".join(a for a in res.repeat_axes if len(res.axis_values[a]) > 1) or "runs"


def _line_figure(plt: Any, res: SweepResults, m: str, x_axis: str) -> Any:
    import numpy as np

    facet = "recipe" if "recipe" in res.varying and x_axis != "recipe" else None
    facets = res.axis_values[facet] if facet else [None]
    others = [a for a in res.varying if a not in (x_axis, facet)]
    ncols = min(3, len(facets))
    nrows = math.ceil(len(facets) / ncols)
    fig, axs = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for i, fv in enumerate(facets):
        ax = axs[i // ncols][i % ncols]
        lines: dict[tuple, list[Cell]] = {}
        for c in res.cells:
            if facet and _norm(c.values[facet]) != _norm(fv):
                continue
            lines.setdefault(tuple(_norm(c.values[a]) for a in others), []).append(c)
        for members in lines.values():
            members = [c for c in members if c.stats[m].n]
            if not members:
                continue
            members.sort(key=lambda c: float(c.values[x_axis]))
            x = np.array([float(c.values[x_axis]) for c in members])
            y = np.array([c.stats[m].mean for c in members])
            e = np.nan_to_num(np.array([c.stats[m].std for c in members]), nan=0.0)
            in_lines = {a: v for a, v in (res.baseline or {}).items() if a in others}
            is_base = bool(in_lines) and all(
                _norm(members[0].values[a]) == _norm(v) for a, v in in_lines.items()
            )
            label = (_label(members[0], others) + (" (baseline)" if is_base else "")) if others else None
            ls = "--" if is_base else "-"
            ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=3, lw=1.4, ls=ls, label=label)
        ax.set_xticks(sorted({float(v) for v in res.axis_values[x_axis]}))
        ax.set(xlabel=x_axis, ylabel=m, title=f"{facet} = {_show(fv)}" if facet else m)
        ax.grid(alpha=0.3)
        if others and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for j in range(len(facets), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(f"{m}: mean ± std over {_repeat_words(res)}", fontsize=10)
    return fig


def _dot_figure(plt: Any, res: SweepResults, m: str) -> Any:
    import numpy as np

    cells = res.cells
    k = len(cells)
    fig, ax = plt.subplots(figsize=(min(20.0, max(4.5, 0.7 * k + 2.0)), 3.8))
    for i, c in enumerate(cells):
        st = c.stats[m]
        if not st.n:
            continue
        jitter = np.linspace(-0.12, 0.12, st.n) if st.n > 1 else np.zeros(1)
        ax.scatter(i + jitter - 0.08, st.values, s=14, color="tab:blue", alpha=0.7, zorder=2)
        ax.errorbar(
            i + 0.12, st.mean, yerr=0.0 if math.isnan(st.std) else st.std, fmt="s", ms=5, color="black",
            capsize=4, zorder=3,
        )  # fmt: skip
    labels = [_label(c, res.varying).replace(", ", "\n") for c in cells]
    ax.set_xticks(range(k))
    ax.set_xticklabels(labels, fontsize=7, rotation=30 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_ylabel(m)
    ax.set_title(f"{m}: each run (dots), mean ± std over {_repeat_words(res)} (bars)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return fig


# ---------------------------------------------------------------------------------------------------------------
# report


def _mode_words(mode: str | None) -> str:
    return {"min": "lower is better", "max": "higher is better"}.get(mode or "", "direction unknown")


def _cell_text(st: CellStat) -> str:
    if not st.n:
        return _DASH
    return f"{_g(st.mean)} ± {_g(st.std)} ({st.n})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_cellmd(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cellmd(c) for c in r) + " |" for r in rows]
    return out


def _metric_groups(metrics: list[str]) -> list[tuple[str, list[str]]]:
    """Reported metrics grouped by split (``test/``, ``val/`` ...; names without a split under ``other``)."""
    groups: dict[str, list[str]] = {}
    for m in metrics:
        groups.setdefault(m.split("/", 1)[0] if "/" in m else "other", []).append(m)
    return list(groups.items())


def _cell_runs(c: Cell) -> str:
    total = sum(c.statuses.values())
    rest = ", ".join(f"{n} {s}" for s, n in c.statuses.items() if s != "done")
    return f"{c.statuses.get('done', 0)}/{total}" + (f" ({rest})" if rest else "")


def results_markdown(res: SweepResults) -> str:
    """The text of ``results.md`` (plots, if any, linked relative to the sweep folder)."""
    vary = res.varying
    counts = Counter(res.frame["status"]) if len(res.frame) else Counter()
    reps = _repeat_words(res)
    parts = [f"# Results: {res.name}", ""]
    parts += [
        f"Sweep folder `{res.sweep_dir}`: {len(res.frame)} runs in {len(res.cells)} cells. "
        "Every run is a row of [results.csv](results.csv).",
        "",
        "## What was run",
        "",
    ]
    for a in res.axes:
        vals = ", ".join(_show(v) for v in res.axis_values[a])
        parts.append(f"- axis `{a}`: {vals}" + ("" if a in vary else " (constant)"))
    if not res.axes:
        parts.append("- no axes: every run is a repeat of one setting")
    for a in res.repeat_axes:
        vals = res.axis_values[a]
        if all(v is None for v in vals):  # e.g. no folds: nothing to say
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            vals = sorted(vals)
        parts.append(f"- repeats `{a}`: {', '.join(_show(v) for v in vals)}")
    known = [f"{counts.get(s, 0)} {s}" for s in STATUSES]
    other = [f"{n} {s}" for s, n in counts.items() if s not in STATUSES]
    parts.append("- runs: " + ", ".join(known + other))
    if res.baseline:
        parts.append("- baseline: " + ", ".join(f"`{a}` = {_show(v)}" for a, v in res.baseline.items()))
    else:
        parts.append("- baseline: none")
    parts.append(
        "- metrics: " + (", ".join(f"`{m}` ({_mode_words(res.modes[m])})" for m in res.metrics) or "none")
    )
    parts.append("")

    def run_rows(status: str) -> list[list[str]]:
        sub = res.frame[res.frame["status"] == status]
        return [
            [r["id"], _label_row(r, vary), _first_error_line(r["error"]) or _DASH] for _, r in sub.iterrows()
        ]

    if counts.get("failed"):
        parts += (
            ["### Failed runs", ""] + _table(["run", "cell", "error (first line)"], run_rows("failed")) + [""]
        )
    if counts.get("missing"):
        parts += ["### Missing metrics", "", "Runs marked done whose `metrics.json` could not be read:", ""]
        parts += _table(["run", "cell", "problem"], run_rows("missing")) + [""]
    unfinished = [s for s in ("pending", "running") if counts.get(s)]
    for s in unfinished:
        ids = list(res.frame.loc[res.frame["status"] == s, "id"])
        parts += [f"{s.capitalize()} runs (not in the statistics): {', '.join(ids)}", ""]
    if res.excluded:
        parts += ["### Values left out", "", "Finished runs without a finite value of a reported metric:", ""]
        parts += _table(["run", "metric", "value"], [list(e) for e in res.excluded]) + [""]

    parts += ["## Per-cell results", ""]
    group_axes = [a for a in vary if not res.baseline or a not in res.baseline]
    where = (
        "within each group of cells sharing " + ", ".join(f"`{a}`" for a in group_axes)
        if res.baseline and group_axes
        else "over all cells"
    )
    parts += [
        f"Mean ± sample standard deviation (n) over {reps} of the finished runs of each cell; `–`: no std with "
        f"one run. **Bold**: the best mean {where} (for metrics of known direction, in groups of two or more "
        "cells). *runs*: finished / all runs of the cell.",
        "",
    ]
    if not res.metrics:
        parts += ["No metrics to report: no run has finished.", ""]
    for split, ms in _metric_groups(res.metrics):
        parts += [f"### {split}", ""]
        header = (
            (vary or ["cell"])
            + ["runs"]
            + [f"{m} ({'↓' if res.modes[m] == 'min' else '↑' if res.modes[m] == 'max' else '?'})" for m in ms]
        )
        rows = []
        for c in res.cells:
            row = [_show(c.values[a]) for a in vary] or ["all runs"]
            row.append(_cell_runs(c))
            for m in ms:
                text = _cell_text(c.stats[m])
                row.append(f"**{text}**" if m in c.best else text)
            rows.append(row)
        parts += _table(header, rows) + [""]

    parts += ["## Paired comparison with the baseline", ""]
    if not res.baseline:
        parts += [
            "No baseline given: set `baseline` in index.json or pass `--baseline KEY=VALUE` to compare each cell "
            "with its baseline cell.",
            "",
        ]
    else:
        base_txt = ", ".join(f"{a}={_show(v)}" for a, v in res.baseline.items())
        parts += [
            f"Each cell against its baseline cell (same values on the other axes, {base_txt}). Runs are matched "
            f"on {' x '.join(res.repeat_axes) or 'their single run'}: Δ = mean over pairs of (cell − baseline), "
            "Δ % = Δ / baseline mean over the same pairs. p: two-sided paired t-test over seeds/folds "
            "(`scipy.stats.ttest_rel`, t = mean(d) / (sd(d) / √n)); none below 2 pairs. With few pairs (3 seeds) the "
            "test has little power: a large p is not evidence of no difference, and no correction is made for "
            "the number of comparisons. *left out*: runs whose seed/fold has no partner in the other cell.",
            "",
        ]
        cmp_axes = [a for a in vary if a not in res.baseline] + [a for a in vary if a in res.baseline]
        for m in res.metrics:
            mode = res.modes[m]
            rows = []
            for c in (c for c in res.comparisons if c.metric == m):
                row = [_show(c.cell.values[a]) for a in cmp_axes]
                if c.baseline is None:
                    rows.append(row + ["no baseline cell", _DASH, _DASH, "0", _DASH, _DASH, _DASH])
                    continue
                verdict = _DASH
                if c.n_pairs and mode and c.mean_diff != 0:
                    verdict = "better" if (c.mean_diff < 0) == (mode == "min") else "worse"
                p_text = (
                    f"{_g(c.p)} ({c.note})"
                    if c.note and not math.isnan(c.p)
                    else (f"{_DASH} ({c.note})" if c.note else _g(c.p))
                )
                nums = [_g(c.mean_diff), _g(c.rel_diff_pct), str(c.n_pairs), _g(c.t), p_text]
                rows.append(row + nums + [str(c.left_out), verdict])
            parts += [f"### {m} ({_mode_words(mode)})", ""]
            header = cmp_axes + ["Δ mean", "Δ %", "pairs", "t", "p", "left out", "Δ is"]
            parts += (_table(header, rows) if rows else ["No cell other than the baseline."]) + [""]

    parts += ["## Plots", ""]
    for p in res.plots:
        rel = os.path.relpath(Path(p).resolve(), res.sweep_dir.resolve())
        parts += [f"![{Path(p).stem}]({Path(rel).as_posix()})", ""]
    for n in res.plot_notes:
        parts += [f"- {n}"]
    if not res.plots and not res.plot_notes:
        parts += ["No plots."]
    parts.append("")
    return "\n".join(parts)


def _label_row(r: Any, axes: list[str]) -> str:
    return ", ".join(f"{a}={_show(r[a])}" for a in axes) or "all runs"


def write_results(
    sweep_dir: str | os.PathLike, baseline: dict[str, Any] | None = None, metrics: list[str] | None = None
) -> Path:
    """Write ``results.csv``, ``plots/*.png`` and ``results.md`` into the sweep folder; return the path of
    ``results.md``. ``baseline`` (``{axis: value}``; text values such as ``"96"`` match 96) and ``metrics``
    override ``index.json``'s. A missing or malformed ``index.json``, a baseline key that is not an axis or a
    baseline value no run has raise :class:`sigattn.errors.UserError`."""
    res = analyze(sweep_dir, baseline, metrics)
    plot_results(res)
    out = res.sweep_dir / "results.md"
    out.write_text(results_markdown(res), encoding="utf-8")
    return out


def format_summary(
    results: SweepResults | str | os.PathLike,
    baseline: dict[str, Any] | None = None,
    metrics: list[str] | None = None,
    max_lines: int = 12,
) -> str:
    """A few lines for the terminal: the run counts, failed ids, and per reported metric the best cell of
    each group. ``results``: an :func:`analyze` result or a sweep folder (then analysed here)."""
    res = results if isinstance(results, SweepResults) else analyze(results, baseline, metrics)
    counts = Counter(res.frame["status"]) if len(res.frame) else Counter()
    status = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"sweep {res.name}: {len(res.frame)} runs in {len(res.cells)} cells ({status or 'no runs'})"]
    for s in ("failed", "missing"):
        ids = list(res.frame.loc[res.frame["status"] == s, "id"]) if counts.get(s) else []
        if ids:
            lines.append(f"  {s}: {', '.join(ids[:10])}" + (" ..." if len(ids) > 10 else ""))
    for m in res.metrics[:4]:
        best = [c for c in res.cells if m in c.best]
        if not best:
            continue
        shown = best[: max(1, max_lines - len(lines))]
        lines.append(f"  best {m} ({_mode_words(res.modes[m])}):")
        for c in shown:
            lines.append(f"    {_label(c, res.varying)}: {_cell_text(c.stats[m])}")
        if len(best) > len(shown):
            lines.append(f"    ... {len(best) - len(shown)} more in results.md")
    return "\n".join(lines)
