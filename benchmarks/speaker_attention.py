"""Speaker verification: ECAPA-TDNN with SE, ECA, CBAM or no channel attention, beside a no-learning baseline.

    python benchmarks/speaker_attention.py [--quick] [--sweep FILE] [--out DIR] [--write]

The trained rows are the sweep ``sweeps/speaker_attention.yaml`` (``sigattn sweep`` of the LibriSpeech smoke
recipe with ``model.attention`` in {se, eca, cbam, none} x seeds 0-2): test EER and minDCF (p_target 0.01),
cosine and AS-norm, mean ± std over seeds, and each attention's paired difference from no attention with the
paired t-test's p. The sweep is resumable: a rerun only trains what is missing, then redraws the table.

The no-learning rows are computed in the same command on the same 4,950 test trials
(:mod:`sigattn.tasks.speaker.baselines`): per utterance, the mean and standard deviation over frames of the
recipe's 80-bin log-mel fbank (before sentence mean normalisation), scored by cosine, plain or after subtracting
the mean vector of the training utterances the recipe trains on (for each seed of the sweep), plus AS-norm of the
latter against the recipe's cohort. ``--quick``: seed 0, attention {se, none}, one epoch, into
runs/sweeps/speaker_quick (a smoke check of this script, not a result). Prints the report; ``--write`` also
writes it as the "speaker_attention" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine, markdown_table, publish, sweep_parser, sweep_time  # noqa: E402

SWEEP = ROOT / "sweeps" / "speaker_attention.yaml"
ATTENTIONS = ("none", "se", "eca", "cbam")
# (column, the metric of a trained run, the no-learning metric)
COLUMNS = (
    ("EER cosine (%)", "test/eer", "eer"),
    ("EER AS-norm (%)", "test/asnorm_eer", "eer"),
    ("minDCF cosine", "test/min_dcf_p01", "min_dcf_p01"),
    ("minDCF AS-norm", "test/asnorm_min_dcf_p01", "min_dcf_p01"),
)
QUICK = {
    "axes": ["model.attention=se,none"],
    "seeds": [0],
    "overrides": ["trainer.epochs=1"],
    "name": "speaker_quick",
}


def _load(sweep_file: Path, out: str | None, quick: bool):
    from sigattn.train.sweep import load_sweep

    options: dict = {"out": out}
    if quick:
        options |= QUICK | {"out": out or str(ROOT / "runs" / "sweeps" / "speaker_quick")}
    return load_sweep(sweep_file, **options)


def run_sweep(sweep_file: Path, out: str | None, quick: bool, train: bool = True) -> Path:
    """Run (or finish) the sweep; returns its folder."""
    sweep = _load(sweep_file, out, quick)
    sweep.run(train=train)
    return sweep.dir


def nolearning(sweep_file: Path, quick: bool) -> dict[str, dict[str, list[float]]]:
    """The no-learning baseline on the sweep recipe's test trials, once per seed of the sweep (the seed picks the
    training utterances whose mean is subtracted, and the cohort): ``{kind: {metric: [value per seed]}}`` with
    kinds ``plain``, ``mean_subtracted``, ``asnorm``."""
    from sigattn.tasks.speaker.baselines import nolearning_metrics
    from sigattn.train.config import load_recipe

    sweep = _load(sweep_file, None, quick)
    path, _, extra = sweep.recipes[0]
    recipe = load_recipe(path, [*sweep.fixed, *extra])
    seeds = sweep.spec.seeds or [recipe.trainer.seed]
    out: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for kind, m in nolearning_metrics(recipe.params, seed=seed).items():
            for k, v in m.items():
                out.setdefault(kind, {}).setdefault(k, []).append(v)
    return out


def _ms(values: list[float], digits: int) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "–"
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return f"{mean:.{digits}f}"
    sd = statistics.stdev(vals)
    return f"{mean:.{digits}f}" if sd < 0.5 * 10**-digits else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _digits(metric: str) -> int:
    return 2 if metric.endswith("eer") else 3


def tables(sweep_dir: Path, base: dict[str, dict[str, list[float]]]) -> tuple[str, str, list[str]]:
    """The main table, the paired-comparison table (Markdown) and the findings (sentences)."""
    from sigattn.train.results import analyze

    res = analyze(sweep_dir, metrics=[c[1] for c in COLUMNS])
    cells = {c.values["model.attention"]: c for c in res.cells}
    rows: list[list] = []
    kinds = (("no learning: fbank mean+std, plain cosine", "plain", None),
             ("no learning: fbank mean+std, train mean subtracted", "mean_subtracted", "asnorm"))  # fmt: skip
    for label, cos_kind, as_kind in kinds:
        row = [label, str(len(base.get(cos_kind, {}).get("eer", [])))]
        for _, metric, key in COLUMNS:
            kind = as_kind if "asnorm" in metric else cos_kind
            row.append(_ms(base[kind][key], _digits(metric)) if kind in base else "–")
        rows.append(row)
    means: dict[str, dict[str, float]] = {}
    for att in [a for a in ATTENTIONS if a in cells] + [a for a in cells if a not in ATTENTIONS]:
        c = cells[att]
        row = [f"ECAPA, attention={att}"]
        n = max((st.n for st in c.stats.values()), default=0)
        row.append(str(n))
        for _, metric, _ in COLUMNS:
            st = c.stats.get(metric)
            row.append(_ms(st.values, _digits(metric)) if st and st.n else "–")
            means.setdefault(att, {})[metric] = st.mean if st and st.n else math.nan
        rows.append(row)
    table = markdown_table(["", "seeds", *[c[0] for c in COLUMNS]], rows)

    comp_rows: list[list] = []
    sig: dict[str, list[str]] = {}
    for att in [a for a in ATTENTIONS if a in cells and a != "none"]:
        row = [att]
        for _, metric, _ in COLUMNS:
            cmp = next((x for x in res.comparisons if x.metric == metric and x.cell is cells[att]), None)
            if cmp is None or not cmp.n_pairs:
                row.append("–")
                continue
            d = _digits(metric)
            p = f", p={cmp.p:.2f}" if not math.isnan(cmp.p) else ""
            row.append(f"{cmp.mean_diff:+.{d}f}{p}")
            if not math.isnan(cmp.p) and cmp.p < 0.05:
                sig.setdefault(att, []).append(f"{metric} {'lower' if cmp.mean_diff < 0 else 'higher'}")
        comp_rows.append(row)
    comp = markdown_table(["attention vs none", *[c[0] for c in COLUMNS]], comp_rows) if comp_rows else ""
    tested = any(not math.isnan(x.p) for x in res.comparisons)
    return table, comp, findings(base, means, sig, tested)


def findings(
    base: dict, means: dict[str, dict[str, float]], sig: dict[str, list[str]], tested: bool = True
) -> list[str]:
    """What the table shows, in sentences computed from its numbers (``tested``: some comparison has a p)."""
    out: list[str] = []
    if not means or not base:
        return out

    def best_base(kind_metric: list[tuple[str, str]]) -> tuple[float, str]:
        vals = [(statistics.fmean(base[k][m]), k) for k, m in kind_metric if k in base]
        return min(vals) if vals else (math.nan, "")

    names = {"plain": "plain cosine", "mean_subtracted": "train-mean-subtracted cosine", "asnorm": "AS-norm"}
    for label, metric, pool in (
        ("cosine EER", "test/eer", [("plain", "eer"), ("mean_subtracted", "eer")]),
        ("AS-norm EER", "test/asnorm_eer", [("asnorm", "eer")]),
    ):
        ref, kind = best_base(pool)
        trained = {a: m[metric] for a, m in means.items() if not math.isnan(m.get(metric, math.nan))}
        if math.isnan(ref) or not trained:
            continue
        better = sorted(a for a, v in trained.items() if v < ref)
        best_a = min(trained, key=trained.get)
        if not better:
            out.append(
                f"**{label}: no trained model beats the no-learning baseline.** The best ECAPA "
                f"(attention={best_a}, {trained[best_a]:.2f} %) is worse than fbank mean+std with "
                f"{names[kind]} ({ref:.2f} %)."
            )
        elif len(better) == len(trained):
            out.append(
                f"{label}: every ECAPA variant beats the no-learning baseline ({names[kind]}, {ref:.2f} %); "
                f"the best is attention={best_a} at {trained[best_a]:.2f} %."
            )
        else:
            out.append(
                f"{label}: only attention={', '.join(better)} beat(s) the no-learning baseline ({names[kind]}, "
                f"{ref:.2f} %); the best is attention={best_a} at {trained[best_a]:.2f} %."
            )
    none = means.get("none", {})
    if none:
        worse, helps = [], []
        for a, m in means.items():
            if a == "none":
                continue
            d = [m[k] - none[k] for k in ("test/eer", "test/asnorm_eer") if not math.isnan(m[k] - none[k])]
            if d and all(x < 0 for x in d):
                helps.append(a)
            elif d and all(x >= 0 for x in d):
                worse.append(a)
        parts = []
        if helps:
            parts.append(f"lower mean EER than no attention with both scorings: {', '.join(helps)}")
        if worse:
            parts.append(f"no lower mean EER than no attention with either scoring: {', '.join(worse)}")
        mixed = [a for a in means if a != "none" and a not in helps and a not in worse]
        if mixed:
            parts.append(f"mixed (lower with one scoring, not the other): {', '.join(mixed)}")
        if parts:
            out.append("Attention: " + "; ".join(parts) + ".")
        if sig:
            out.append(
                "Paired t-tests with p < 0.05: "
                + "; ".join(f"{a}: {', '.join(v)}" for a, v in sig.items())
                + " (not corrected for multiple tests)."
            )
        elif not tested:
            out.append("No p-values: fewer than two seeds paired with attention=none.")
        else:
            out.append(
                "No attention differs from none with p < 0.05 in any column: with 3 seeds, the measured "
                "differences are within seed-to-seed variation, so this table does not show that channel "
                "attention helps this model."
            )
    return out


def build_parser() -> argparse.ArgumentParser:
    return sweep_parser(__doc__, "seed 0, attention se and none, one epoch: a smoke check", SWEEP)


def main(argv: list[str] | None = None) -> str:
    a = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    sweep_dir = run_sweep(a.sweep, a.out, a.quick, train=not a.redraw)
    t1 = time.perf_counter()
    base = nolearning(a.sweep, a.quick)
    t2 = time.perf_counter()
    table, comp, found = tables(sweep_dir, base)
    rel = a.sweep.resolve().relative_to(ROOT) if a.sweep.resolve().is_relative_to(ROOT) else a.sweep
    md = (
        "## Speaker verification: channel attention in ECAPA-TDNN vs a no-learning baseline\n\n"
        + (
            "**--quick: one seed, one epoch, a smoke check of this script, not a result.**\n\n"
            if a.quick
            else ""
        )
        + f"Machine: {machine()}; this command: {t2 - t0:.0f} s, of which the sweep {t1 - t0:.0f} s (a rerun over a "
        f"finished sweep only redraws) and the no-learning baseline {t2 - t1:.0f} s; {sweep_time(sweep_dir)}. Command: "
        f"`python benchmarks/speaker_attention.py{' --quick' if a.quick else ''}` (the sweep `sigattn sweep {rel}`; "
        "per-run tables in its results.md).\n\n"
        "Recipe `recipes/speaker_verification/librispeech_smoke.yaml`: ECAPA-TDNN C=128 (MFA 384, 128-d), AAM "
        "softmax, 12 epochs of 16 steps of 32 crops of 1.5 s from 231 LibriSpeech train-clean-100 speakers (one "
        "utterance each), 20 more held out for model selection. Test: all 4,950 pairs (450 target) of the 100 "
        "test-other utterances. `model.attention` sets the gate of every SE-Res2Block: SE (the paper's), ECA, "
        "CBAM, or none (identity). Trained rows: cosine after subtracting the mean embedding of the 100 cohort "
        "training utterances, and AS-norm (top 50 of that cohort), mean ± std over seeds 0-2. EER in %, minDCF "
        "normalised at p_target 0.01 (c_miss = c_fa = 1); with 450 target trials EER moves in steps of about "
        "0.2 %.\n\n"
        "No-learning rows, computed in this command on the same trials: each utterance is the per-bin mean and "
        "standard deviation over frames of its 80-bin log-mel fbank (sigattn's Kaldi fbank with the recipe's "
        "settings, before sentence mean normalisation, which would zero the mean half): 160 numbers. Scored by "
        "cosine, plain, or after subtracting the mean vector of the recipe's training utterances (for each "
        "seed's 231 training speakers); AS-norm of the latter against the recipe's cohort (the same 100 "
        "utterances, top 50). Nothing is trained; plain cosine does not depend on the seed.\n\n"
        + table
        + "\n\n"
        + (
            "Paired differences from attention=none (same seed), with the two-sided paired t-test's p "
            "(3 pairs: little power):\n\n" + comp + "\n\n"
            if comp
            else ""
        )
        + "".join(f"- {s}\n" for s in found)
    )
    publish("speaker_attention", md, a.write)
    return md


if __name__ == "__main__":
    main()
