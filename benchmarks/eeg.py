"""EEG motor imagery on eegmmidb S001: DBConformer (channel attention pool and mean pool) vs braindecode EEGNet
and ShallowFBCSPNet vs MNE CSP+LDA, in two windows, chronological 5-fold CV x 3 seeds; and the training
throughput of DBConformer vs braindecode's EEGConformer.

    python benchmarks/eeg.py [--quick] [--sweep FILE] [--out DIR] [--write]

The networks are the sweep ``sweeps/eeg_motor_imagery.yaml`` (``sigattn sweep`` of the recipe
``recipes/eeg_motor_imagery/eegmmidb_lr.yaml`` with the model and the window as named variants, trained by the
one Trainer; checkpoint = best validation epoch). CSP+LDA is not a Trainer model: it is fitted here, on the
training + validation trials of exactly the task's split of every fold, for each window variant of the sweep file
(read from it, with the sweep's fixed overrides), so it sees the same trials, filters and folds as the networks.
The sweep is resumable: a rerun only trains what is missing, then redraws the table. ``--quick``: fold 0, seed
0, 2 epochs at 80 Hz, into its own sweep folder (runs/sweeps/eeg_quick): a smoke check of this script, not a
result. Prints the report; ``--write`` also writes it as the "eeg" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine, markdown_table, publish, sweep_parser, sweep_time  # noqa: E402
from sigattn.data_paths import shared_data_dir  # noqa: E402

SWEEP = ROOT / "sweeps" / "eeg_motor_imagery.yaml"
QUICK = {
    "folds": [0],
    "seeds": [0],
    "overrides": ["trainer.epochs=2", "params.sfreq=80.0"],
    "name": "eeg_quick",
}
METRICS = ("accuracy", "balanced_accuracy", "kappa")
_SCALES = ((100.0, 1), (100.0, 1), (1.0, 3))  # accuracy %, balanced accuracy %, kappa
MODELS = {
    "dbconformer": "DBConformer (channel_pool)",
    "dbconformer_mean": "DBConformer (mean pool)",
    "eegnet": "EEGNet (braindecode)",
    "shallow": "ShallowFBCSPNet (braindecode)",
}
CSP = "CSP+LDA (MNE)"
BASE, MEAN = "dbconformer", "dbconformer_mean"


def run_sweep(sweep_file: Path, out: str | None, quick: bool, train: bool = True):
    """Run (or finish) the sweep; returns it (its folder is ``.dir``)."""
    from sigattn.train.sweep import load_sweep

    options: dict = {"out": out}
    if quick:
        options |= QUICK
        options["out"] = out or str(ROOT / "runs" / "sweeps" / "eeg_quick")
    sweep = load_sweep(sweep_file, **options)
    sweep.run(train=train)
    return sweep


def csp_lda_scores(sweep) -> tuple[dict[str, dict[int, dict[str, float]]], str]:
    """CSP+LDA on every fold of the sweep, per window variant: ``{window: {fold: metrics}}`` and a line
    describing the trials. Fitted on training + validation trials of the task's split, tested on its test
    trials; deterministic, so one fit per fold."""
    from sigattn.tasks.eeg import protocols
    from sigattn.tasks.eeg.baselines import csp_lda
    from sigattn.tasks.eeg.task import EEGTask
    from sigattn.train.config import load_recipe

    recipe = sweep.recipes[0][0]
    windows = sweep.variants.get("window", {"recipe": []})
    folds = sorted({r.values["fold"] for r in sweep.runs})
    scores: dict[str, dict[int, dict[str, float]]] = {}
    about = ""
    for label, window_ovs in windows.items():
        scores[label] = {}
        for fold in folds:
            cfg = load_recipe(recipe, [*sweep.fixed, *window_ovs, f"params.fold={fold}"])
            task = EEGTask(cfg.params)
            task.build_datasets()
            s, y = task.split, task.trials.y
            fit = np.sort(np.concatenate([s["train"], s["val"]]))
            pred = csp_lda(s["X"][fit], y[fit], s["X"][s["test"]])
            scores[label][fold] = protocols.classification_metrics(y[s["test"]], pred, 2)
            if not about:
                t = task.trials
                about = (
                    f"{len(t.y)} trials, {t.X.shape[1]} channels at {t.sfreq:g} Hz, ~{len(s['test'])} test "
                    "trials per fold"
                )
    return scores, about


def _pct(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return "–"
    mean = scale * float(np.mean(v))
    sd = f" ± {scale * float(np.std(v, ddof=1)):.{digits}f}" if len(v) > 1 else ""
    return f"{mean:.{digits}f}{sd}"


def _stat(stat, scale: float, digits: int) -> str:
    return _pct(stat.values, scale, digits) if stat is not None and stat.n else "–"


def _delta(diff: float, p: float, n: int) -> str:
    """A paired difference of accuracy in points, with the paired t-test's p where there is one."""
    if not n or math.isnan(diff):
        return "–"
    diff += 0.0  # -0.0 -> 0.0
    return f"{100 * diff:+.1f} (p={p:.2f})" if not math.isnan(p) else f"{100 * diff:+.1f}"


def _ttest(a: list[float], b: list[float]) -> tuple[float, float]:
    d = np.asarray(a) - np.asarray(b)
    if len(d) < 2 or np.ptp(d) <= 1e-12 * max(np.abs(d).max(), 1e-300):
        return (float(d.mean()) if len(d) else math.nan), math.nan
    from scipy import stats

    return float(d.mean()), float(stats.ttest_rel(a, b).pvalue)


def tables(sweep_dir: Path, csp: dict[str, dict[int, dict[str, float]]]) -> str:
    """The comparison table, the window effect per model and what they show (Markdown)."""
    from sigattn.train.results import analyze

    acc, metrics = "test/accuracy", [f"test/{m}" for m in METRICS]
    res = analyze(sweep_dir, baseline={"model": BASE}, metrics=metrics)
    cells = {(c.values["model"], c.values["window"]): c for c in res.cells}
    comp = {(c.cell.values["model"], c.cell.values["window"]): c for c in res.comparisons if c.metric == acc}
    windows = list(dict.fromkeys(c.values["window"] for c in res.cells))
    models = list(dict.fromkeys(c.values["model"] for c in res.cells))
    col = res.columns[acc]
    done = res.frame[res.frame["status"] == "done"]

    def base_per_fold(window: str) -> dict[int, float]:
        rows = done[(done["model"] == BASE) & (done["window"] == window)]
        return {int(f): float(g[col].mean()) for f, g in rows.groupby("fold")}

    rows, csp_vs = [], {}
    for model in [*models, CSP]:
        row = [f"**{MODELS.get(model, model)}**" if model == BASE else MODELS.get(model, model)]
        for w in windows:
            if model == CSP:
                per_fold = csp.get(w, {})
                row += [
                    _pct([m[k] for m in per_fold.values()], *sc)
                    for k, sc in zip(METRICS, _SCALES, strict=True)
                ]
                base = base_per_fold(w)
                common = sorted(set(base) & set(per_fold))
                diff, p = _ttest([per_fold[f]["accuracy"] for f in common], [base[f] for f in common])
                csp_vs[w] = (diff, p, len(common))
                row.append(_delta(diff, p, len(common)) + (" (folds)" if common else ""))
                continue
            c = cells.get((model, w))
            row += [_stat(c.stats.get(m) if c else None, *sc) for m, sc in zip(metrics, _SCALES, strict=True)]
            cmp = comp.get((model, w))
            row.append(
                "baseline" if model == BASE else (_delta(cmp.mean_diff, cmp.p, cmp.n_pairs) if cmp else "–")
            )
        rows.append(row)
    headers = ["model"] + [
        h
        for w in windows
        for h in (f"{w}: accuracy %", "balanced acc. %", "kappa", "Δ acc. vs DBConformer, points")
    ]
    text = markdown_table(headers, rows) + "\n\n"

    other = [w for w in windows if w != "recipe"]
    win = {}
    if other and "recipe" in windows:  # the window effect per model: the other window minus the recipe's
        by_window = analyze(sweep_dir, baseline={"window": "recipe"}, metrics=[acc])
        win = {
            c.cell.values["model"]: c for c in by_window.comparisons if c.cell.values["window"] == other[0]
        }
    if other and win:
        wrows = [[MODELS.get(m, m), _delta(win[m].mean_diff, win[m].p, win[m].n_pairs) if m in win else "–"]
                 for m in models]  # fmt: skip
        if "recipe" in csp and other[0] in csp:
            common = sorted(set(csp["recipe"]) & set(csp[other[0]]))
            d, p = _ttest(
                [csp[other[0]][f]["accuracy"] for f in common], [csp["recipe"][f]["accuracy"] for f in common]
            )
            wrows.append([CSP, _delta(d, p, len(common)) + (" (folds)" if common else "")])
        text += markdown_table(["model", f"Δ accuracy, {other[0]} − recipe window, points"], wrows) + "\n\n"
    return text + findings(cells, comp, csp_vs, win, windows, csp)


def _verdict(diff: float, p: float, n: int) -> str:
    if not n or math.isnan(diff):
        return "no paired runs"
    diff += 0.0  # -0.0 -> 0.0
    size = f"{100 * diff:+.1f} points"
    if math.isnan(p):
        return f"{size} ({'one pair' if n < 2 else 'identical differences'}: no test)"
    return f"{size}, p={p:.2f}" + (" (significant at 0.05)" if p < 0.05 else " (not significant)")


def findings(cells: dict, comp: dict, csp_vs: dict, win: dict, windows: list[str], csp: dict) -> str:
    """What the table shows, in words drawn from its numbers (so a rerun cannot contradict its text)."""
    acc = "test/accuracy"
    lines = []
    for w in windows:
        mean_pool = comp.get((MEAN, w))
        if mean_pool is not None:
            helps = mean_pool.n_pairs and not math.isnan(mean_pool.mean_diff) and -mean_pool.mean_diff > 0
            sig = helps and not math.isnan(mean_pool.p) and mean_pool.p < 0.05
            word = "helps" if sig else ("is ahead but not significantly" if helps else "does not help")
            lines.append(
                f"- {w} window: the channel attention pool {word}: channel_pool − mean pool = "
                f"{_verdict(-mean_pool.mean_diff, mean_pool.p, mean_pool.n_pairs)}."
            )
        ranked = sorted(
            (
                (c.stats[acc].mean, MODELS.get(m, m))
                for (m, ww), c in cells.items()
                if ww == w and c.stats[acc].n
            ),
            reverse=True,
        )
        ranked += [(float(np.mean([v["accuracy"] for v in csp[w].values()])), CSP)] if csp.get(w) else []
        ranked.sort(reverse=True)
        if ranked:
            order = ", ".join(f"{name} {100 * v:.1f} %" for v, name in ranked)
            lines.append(f"- {w} window, mean accuracy from best to worst: {order}.")
        for m in ("eegnet", "shallow"):
            c = comp.get((m, w))
            if c is not None and c.n_pairs:
                lines.append(f"  - {MODELS[m]} − DBConformer: {_verdict(c.mean_diff, c.p, c.n_pairs)}.")
        if w in csp_vs:
            lines.append(f"  - CSP+LDA − DBConformer (seed mean, paired over folds): {_verdict(*csp_vs[w])}.")
    for m, c in win.items():
        if c.n_pairs and not math.isnan(c.p) and c.p < 0.05:
            lines.append(
                f"- The window matters for {MODELS.get(m, m)}: {_verdict(c.mean_diff, c.p, c.n_pairs)}."
            )
    return "What it shows:\n\n" + "\n".join(lines) + "\n" if lines else ""


def throughput(n_chans: int, n_times: int, sfreq: float, batch: int, steps: int) -> str:
    """Training samples/s of DBConformer vs braindecode EEGConformer on the same random batches."""
    from sigattn.models.registry import create_model

    x = torch.randn(batch, n_chans, n_times)
    y = torch.randint(0, 2, (batch,))
    rows, rates = [], {}
    for name, key in (("DBConformer", "dbconformer"), ("EEGConformer (braindecode)", "eegconformer")):
        torch.manual_seed(0)
        model = create_model("eeg", key, n_chans=n_chans, n_outputs=2, n_times=n_times, sfreq=sfreq).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, opt=opt):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rate = steps * batch / (time.perf_counter() - t0)
        rates[name] = rate
        rows.append([name, f"{sum(p.numel() for p in model.parameters()):,}", f"{rate:.1f}"])
    ratio = rates["DBConformer"] / rates["EEGConformer (braindecode)"]
    table = markdown_table(["model", "parameters", "training samples/s"], rows)
    return f"{table}\n\nDBConformer trains {ratio:.2f}x as many samples per second as EEGConformer " + (
        f"({n_chans} channels x {n_times} samples, batch {batch}, {steps} Adam steps after one warm-up step)."
    )


def build_parser() -> argparse.ArgumentParser:
    return sweep_parser(__doc__, "fold 0, seed 0, 2 epochs at 80 Hz: a smoke check", SWEEP)


def main(argv: list[str] | None = None) -> str | None:
    a = build_parser().parse_args(argv)
    root = shared_data_dir()
    if root is None or not (root / "eeg" / "eegmmidb" / "S001R04.edf").exists():
        print("benchmarks/eeg.py: ../shared/data/eeg/eegmmidb is absent; nothing to measure")
        return None
    t0 = time.perf_counter()
    sweep = run_sweep(a.sweep, a.out, a.quick, train=not a.redraw)
    csp, about = csp_lda_scores(sweep)
    body = tables(sweep.dir, csp)
    elapsed = time.perf_counter() - t0
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    tp = throughput(22, 1001, 250.0, 32, 5 if a.quick else 20)
    rel = a.sweep.resolve().relative_to(ROOT) if a.sweep.resolve().is_relative_to(ROOT) else a.sweep
    quick = "**--quick: a smoke check of the script, not a result.** " if a.quick else ""
    size = (
        "2 epochs at 80 Hz, fold 0, seed 0 (--quick)"
        if a.quick
        else "the recipe's own size, the same in every cell (160 Hz, 30 epochs, batch 16, Adam lr 1e-3, checkpoint "
        "= best validation accuracy); no shrinking was needed to fit about an hour on 2 CPU cores"
    )
    repeats = "1 run" if a.quick else "5 x 3 = 15 runs"
    md = (
        "## EEG motor imagery (eegmmidb S001, left vs right imagined fist)\n\n"
        f"Machine: {machine()}; sweep + CSP+LDA: {elapsed:.0f} s (a rerun over a finished sweep only redraws); "
        f"{sweep_time(sweep.dir)}. "
        f"Command: `python benchmarks/eeg.py{' --quick' if a.quick else ''}` (the networks are the sweep "
        f"`sigattn sweep {rel}`; per-run tables and plots in its results.md).\n\n"
        f"{quick}Protocol: recipe eegmmidb_lr.yaml ({about}), within-subject chronological 5-fold CV (KFold "
        "without shuffling), validation = last 20% of each class's training trials, Euclidean alignment fitted on "
        "each fold's training trials. Two windows: **standard** = 0.5-2.5 s after the cue, 7-30 Hz (the usual "
        "MI window); **recipe** = the recipe's 0-4 s, 8-32 Hz. Networks: the recipe with the model switched, "
        f"trained by sigattn's Trainer, {size}. CSP+LDA (6 components, Ledoit-Wolf) fits on training + "
        f"validation trials of the same split, per window. Cells: mean ± std over fold x seed ({repeats}; "
        "CSP+LDA: over the folds, it is deterministic). Δ: mean paired difference of test accuracy to "
        "DBConformer (channel_pool) in the "
        "same window, over the (fold, seed) pairs; p: two-sided paired t-test over the 5 folds, each the mean "
        "of its 3 seeds (they share the fold's test trials), as `sigattn results` does (CSP+LDA: against "
        "DBConformer's seed mean, over the folds). ~9 test trials per fold: one trial is ~11 points, so only "
        "large differences can be told apart, and folds are not independent (shared training trials), so p is "
        "optimistic.\n\n"
        + body
        + "\n### Training throughput (BNCI2014_001 shapes, random data)\n\n"
        + tp
        + "\n"
    )
    publish("eeg", md, a.write)
    return md


if __name__ == "__main__":
    main()
