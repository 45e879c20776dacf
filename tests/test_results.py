"""Results of a sweep (sigattn.train.results) on a sweep folder made by hand: index.json and metrics.json files
with chosen numbers. Every expected number is computed here from those numbers (statistics, numpy, scipy), not
taken from the module."""

from __future__ import annotations

import csv
import json
import math
import statistics

import numpy as np
import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from scipy import stats  # noqa: E402

from sigattn.errors import UserError  # noqa: E402
from sigattn.train.results import (  # noqa: E402
    analyze,
    collect,
    format_summary,
    metric_mode,
    results_markdown,
    write_results,
)

AXES = ["recipe", "params.pred_len", "model.channel_strategy"]
PNG = b"\x89PNG\r\n\x1a\n"

# (pred_len, strategy) -> {seed: (test/mse, test/acc)}; seed 4 of (96, ccm) has no partner in (96, ci)
MSE_ACC = {
    (96, "ci"): {0: (0.50, 0.80), 1: (0.52, 0.82), 2: (0.47, 0.81)},
    (96, "ccm"): {0: (0.45, 0.70), 1: (0.46, 0.73), 2: (0.44, 0.71), 4: (0.40, 0.69)},
    (192, "ci"): {0: (0.60, 0.75), 1: (0.63, 0.74), 2: (0.61, 0.76)},
    (192, "ccm"): {0: (0.58, 0.78), 1: (0.60, 0.79)},
}
FAILED_ERROR = "Traceback (most recent call last):\n  File x.py\nRuntimeError: CUDA out of memory"


def _metrics(mse: float, acc: float, seed: int) -> dict[str, float]:
    return {
        "test/mse": mse,
        "test/mae": round(mse / 2 + 0.01 * seed, 6),
        "test/acc": acc,
        "val/mse": mse + 0.125,
        "best_epoch": float(3 + seed),
        "train_seconds": 1.5,
        "test/n": 100.0,  # the size of the test split: a column, not a reported metric
    }


def _write_run(root, run_id, values, status="done", metrics=None, error=None, absolute=False):
    d = root / "runs" / run_id
    d.mkdir(parents=True, exist_ok=True)
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    return {
        "id": run_id,
        "dir": str(d) if absolute else f"runs/{run_id}",
        "values": values,
        "status": status,
        "error": error,
        "seconds": 12.5,
    }


def make_sweep(root, baseline=True, **extra):
    """The main sweep: 13 runs of one recipe, 2 horizons x 2 strategies x seeds, one failed, one missing."""
    runs, written = [], {}
    i = 0
    for (h, s), seeds in MSE_ACC.items():
        for seed, (mse, acc) in seeds.items():
            m = _metrics(mse, acc, seed)
            rid = f"r{i:04d}"
            values = {"recipe": "dlinear_etth1", "params.pred_len": h, "model.channel_strategy": s}
            runs.append(
                _write_run(root, rid, {**values, "seed": seed, "fold": None}, metrics=m, absolute=i == 1)
            )
            written[rid] = m
            i += 1
    failed = {"recipe": "dlinear_etth1", "params.pred_len": 192, "model.channel_strategy": "ccm"}
    runs.append(_write_run(root, "rfail", {**failed, "seed": 2, "fold": None}, "failed", error=FAILED_ERROR))
    missing = {"recipe": "dlinear_etth1", "params.pred_len": 96, "model.channel_strategy": "ci"}
    runs.append(_write_run(root, "rmiss", {**missing, "seed": 3, "fold": None}, "done"))  # no metrics.json
    runs.append(_write_run(root, "rpend", {**missing, "seed": 5, "fold": None}, "pending"))
    index = {
        "name": "forecast_ci_ccm",
        "axes": AXES,
        "repeat_axes": ["seed", "fold"],
        "baseline": {"model.channel_strategy": "ci"} if baseline else None,
        "runs": runs,
        **extra,
    }
    (root / "index.json").write_text(json.dumps(index))
    return written


@pytest.fixture
def sweep(tmp_path):
    return tmp_path, make_sweep(tmp_path)


def _cell(res, h, s):
    (cell,) = [
        c for c in res.cells if c.values["params.pred_len"] == h and c.values["model.channel_strategy"] == s
    ]
    return cell


def _cmp(res, h, s, metric):
    (c,) = [
        c
        for c in res.comparisons
        if c.metric == metric
        and c.cell.values["params.pred_len"] == h
        and c.cell.values["model.channel_strategy"] == s
    ]
    return c


# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mode",
    [
        ("test/mse", "min"),
        ("val/mae", "min"),
        ("train/loss", "min"),
        ("test/eer", "min"),
        ("test/mindcf", "min"),
        ("test/min_dcf", "min"),
        ("test/smape", "min"),
        ("test/acc", "max"),
        ("test/balanced_accuracy", "max"),
        ("test/kappa", "max"),
        ("test/f1_macro", "max"),
        ("test/r2", "max"),
        ("best_epoch", None),
        ("train_seconds", None),
    ],
)
def test_metric_mode_from_the_name(name, mode):
    assert metric_mode(name) == mode


def test_metric_mode_override_wins():
    assert metric_mode("test/mse", {"test/mse": "max"}) == "max"
    assert metric_mode("test/score", {"test/score": "min"}) == "min"


def test_results_csv_is_the_metrics_files_row_per_run(sweep):
    root, written = sweep
    frame = collect(root)
    assert list(frame["id"]) == [*written, "rfail", "rmiss", "rpend"]
    with open(root / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:9] == ["id", "status", *AXES, "seed", "fold", "seconds", "error"]
    assert set(header[9:]) == {
        "test/mse",
        "test/mae",
        "test/acc",
        "val/mse",
        "best_epoch",
        "train_seconds",
        "test/n",
    }
    assert len(rows) == len(written) + 3
    by_id = {r["id"]: r for r in rows}
    for rid, m in written.items():
        r = by_id[rid]
        assert r["status"] == "done"
        for k, v in m.items():
            assert float(r[k]) == v, (rid, k)  # exact: the CSV round-trips the floats
        assert r["fold"] == ""  # null fold
    assert by_id["r0000"]["params.pred_len"] == "96" and by_id["r0000"]["seed"] == "0"
    fail = by_id["rfail"]
    assert fail["status"] == "failed" and "CUDA out of memory" in fail["error"]
    assert all(math.isnan(float(fail[k] or "nan")) for k in header[9:])
    assert by_id["rmiss"]["status"] == "missing" and "metrics.json" in by_id["rmiss"]["error"]
    assert by_id["rpend"]["status"] == "pending"


def test_cell_mean_std_n_match_a_hand_computation(sweep):
    root, _ = sweep
    res = analyze(root)
    assert res.metrics == ["test/mse", "test/mae", "test/acc"]  # default: every test/ metric
    assert len(res.cells) == 4
    for (h, s), seeds in MSE_ACC.items():
        cell = _cell(res, h, s)
        mse = [v[0] for v in seeds.values()]
        st = cell.stats["test/mse"]
        assert st.n == len(mse)
        assert st.mean == pytest.approx(statistics.mean(mse), rel=1e-12)
        assert st.std == pytest.approx(statistics.stdev(mse), rel=1e-12)  # sample std, ddof=1
    # the failed run and the run without metrics.json are counted in the cell, not in its statistics
    assert _cell(res, 192, "ccm").statuses == {"done": 2, "failed": 1}
    assert _cell(res, 96, "ci").statuses == {"done": 3, "missing": 1, "pending": 1}


def test_paired_t_test_matches_scipy_and_the_hand_formula(sweep):
    root, _ = sweep
    res = analyze(root)
    c = _cmp(res, 96, "ccm", "test/mse")
    # pairs on seeds 0, 1, 2; seed 4 of ccm has no ci partner and is left out
    a = [0.45, 0.46, 0.44]
    b = [0.50, 0.52, 0.47]
    assert c.n_pairs == 3
    assert c.left_out == 1 and c.left_out_ids == ["r0006"]
    d = [x - y for x, y in zip(a, b)]
    t_hand = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(len(d)))
    ref = stats.ttest_rel(a, b)
    assert c.t == pytest.approx(t_hand, rel=1e-9)
    assert c.t == pytest.approx(ref.statistic, rel=1e-9)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert c.mean_diff == pytest.approx(statistics.mean(d), rel=1e-12)
    assert c.rel_diff_pct == pytest.approx(100 * statistics.mean(d) / statistics.mean(b), rel=1e-9)
    assert c.baseline is _cell(res, 96, "ci")


def test_runs_without_a_partner_are_left_out_and_counted(sweep):
    root, _ = sweep
    res = analyze(root)
    c = _cmp(res, 192, "ccm", "test/acc")
    # ccm seed 2 failed: ci seed 2 has no partner
    assert c.n_pairs == 2 and c.left_out == 1
    a, b = [0.78, 0.79], [0.75, 0.74]
    assert c.p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    assert c.mean_diff == pytest.approx(np.mean(np.subtract(a, b)), rel=1e-12)
    # the baseline cells are not compared with themselves
    assert {
        (x.cell.values["params.pred_len"], x.cell.values["model.channel_strategy"]) for x in res.comparisons
    } == {
        (96, "ccm"),
        (192, "ccm"),
    }


def test_one_pair_has_no_p_value(tmp_path):
    runs = [
        _write_run(tmp_path, "a", {"s": "ci", "seed": 0}, metrics={"test/mse": 1.0}),
        _write_run(tmp_path, "b", {"s": "ccm", "seed": 0}, metrics={"test/mse": 0.5}),
    ]
    (tmp_path / "index.json").write_text(json.dumps({"axes": ["s"], "baseline": {"s": "ci"}, "runs": runs}))
    res = analyze(tmp_path)
    (c,) = res.comparisons
    assert c.n_pairs == 1 and c.mean_diff == -0.5 and math.isnan(c.p)
    assert math.isnan(res.cells[0].stats["test/mse"].std)


def test_best_is_the_min_for_mse_and_the_max_for_accuracy_within_each_group(sweep):
    root, _ = sweep
    res = analyze(root)
    # group 96: ccm has the lower mse, ci the higher accuracy; group 192: ccm both
    assert "test/mse" in _cell(res, 96, "ccm").best and "test/mse" not in _cell(res, 96, "ci").best
    assert "test/acc" in _cell(res, 96, "ci").best and "test/acc" not in _cell(res, 96, "ccm").best
    assert "test/mse" in _cell(res, 192, "ccm").best and "test/acc" in _cell(res, 192, "ccm").best
    assert not _cell(res, 192, "ci").best & {"test/mse", "test/acc"}
    md = write_results(root).read_text()
    ccm96 = f"{statistics.mean([0.45, 0.46, 0.44, 0.40]):.4g}"
    ci96_acc = f"{statistics.mean([0.80, 0.82, 0.81]):.4g}"
    assert f"**{ccm96} ± " in md and f"**{ci96_acc} ± " in md


def test_without_baseline_the_best_is_over_all_cells(tmp_path):
    make_sweep(tmp_path, baseline=False)
    res = analyze(tmp_path)
    best_mse = [c for c in res.cells if "test/mse" in c.best]
    assert [(c.values["params.pred_len"], c.values["model.channel_strategy"]) for c in best_mse] == [
        (96, "ccm")
    ]
    assert res.comparisons == []
    assert "No baseline given" in write_results(tmp_path).read_text()


def test_baseline_argument_overrides_index_and_text_values_match(sweep):
    root, _ = sweep
    res = analyze(root, baseline={"params.pred_len": "96"})  # text from the CLI, an int in index.json
    assert res.baseline == {"params.pred_len": 96}
    c = _cmp(res, 192, "ci", "test/mse")
    assert c.baseline is _cell(res, 96, "ci")
    assert c.mean_diff == pytest.approx(statistics.mean([0.10, 0.11, 0.14]), rel=1e-9)


def test_bad_baseline_key_or_value_is_a_user_error_naming_it(sweep):
    root, _ = sweep
    with pytest.raises(UserError, match="model.attention") as e:
        write_results(root, baseline={"model.attention": "se"})
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="model.channel_strategy=cluster"):
        write_results(root, baseline={"model.channel_strategy": "cluster"})
    with pytest.raises(UserError, match="test/rmse"):
        write_results(root, metrics=["test/rmse"])


def test_missing_or_malformed_index_is_a_user_error_naming_the_file(tmp_path):
    with pytest.raises(UserError, match="index.json"):
        write_results(tmp_path)
    (tmp_path / "index.json").write_text('{"axes": [}')
    with pytest.raises(UserError, match=r"index\.json.*JSON"):
        write_results(tmp_path)
    (tmp_path / "index.json").write_text('{"axes": ["a"], "runs": {}}')
    with pytest.raises(UserError, match="'runs'"):
        write_results(tmp_path)


def test_report_lists_counts_failures_missing_runs_and_plots(sweep):
    root, _ = sweep
    md_path = write_results(root)
    assert md_path == root / "results.md"
    md = md_path.read_text()
    assert md.startswith("# Results: forecast_ci_ccm")
    assert "12 done, 1 failed, 1 missing, 1 pending, 0 running" in md
    assert "| rfail |" in md and "RuntimeError: CUDA out of memory" in md and "Traceback" not in md
    assert "| rmiss |" in md
    assert "paired t-test" in md and "little power" in md
    p = stats.ttest_rel([0.45, 0.46, 0.44], [0.50, 0.52, 0.47]).pvalue
    assert f"| {p:.4g} |" in md
    for m in ("test/mse", "test/mae", "test/acc"):
        png = root / "plots" / f"{m.replace('/', '_')}.png"
        assert png.read_bytes()[:8] == PNG
        assert f"](plots/{png.name})" in md
    summary = format_summary(root)
    assert "forecast_ci_ccm" in summary and "rfail" in summary and "rmiss" in summary


def test_metrics_from_index_and_one_run_cells_show_no_std(tmp_path):
    runs = [
        _write_run(tmp_path, "a", {"s": "ci", "seed": 0}, metrics={"test/mse": 0.25, "test/acc": 0.5}),
        _write_run(tmp_path, "b", {"s": "ccm", "seed": 0}, metrics={"test/mse": 0.125, "test/acc": 0.75}),
    ]
    index = {"axes": ["s"], "metrics": ["test/acc"], "runs": runs}
    (tmp_path / "index.json").write_text(json.dumps(index))
    res = analyze(tmp_path)
    assert res.metrics == ["test/acc"]
    md = write_results(tmp_path).read_text()
    assert "0.5 ± – (1)" in md and "**0.75 ± – (1)**" in md
    # no numeric axis: a dot plot per cell
    assert (tmp_path / "plots" / "test_acc.png").read_bytes()[:8] == PNG


def test_list_axis_values_and_an_empty_axes_list(tmp_path):
    runs = [
        _write_run(tmp_path, f"r{i}", {"kernel": k, "seed": s}, metrics={"test/mse": 0.1 * (i + 1)})
        for i, (k, s) in enumerate([([3, 5], 0), ([3, 5], 1), ([7], 0), ([7], 1)])
    ]
    (tmp_path / "index.json").write_text(
        json.dumps({"axes": ["kernel"], "baseline": {"kernel": [7]}, "runs": runs})
    )
    res = analyze(tmp_path)
    assert len(res.cells) == 2
    (c,) = res.comparisons
    assert c.n_pairs == 2 and c.mean_diff == pytest.approx(-0.2)
    assert list(res.frame["kernel"]) == ["[3, 5]", "[3, 5]", "[7]", "[7]"]
    runs = [
        _write_run(tmp_path, f"q{s}", {"seed": s}, metrics={"test/mse": v}) for s, v in [(0, 1.0), (1, 3.0)]
    ]
    (tmp_path / "index.json").write_text(json.dumps({"axes": [], "runs": runs}))
    res = analyze(tmp_path)
    (cell,) = res.cells
    assert cell.stats["test/mse"].mean == 2.0 and cell.stats["test/mse"].std == pytest.approx(math.sqrt(2))
    write_results(tmp_path)
    assert (tmp_path / "plots" / "test_mse.png").read_bytes()[:8] == PNG


def test_non_finite_value_is_left_out_and_reported(tmp_path):
    runs = [
        _write_run(tmp_path, "a", {"s": "x", "seed": 0}, metrics={"test/mse": 1.0}),
        _write_run(tmp_path, "b", {"s": "x", "seed": 1}, metrics={"test/mse": float("nan")}),
    ]
    (tmp_path / "index.json").write_text(json.dumps({"axes": ["s"], "runs": runs}))
    res = analyze(tmp_path)
    assert res.cells[0].stats["test/mse"].n == 1
    assert res.excluded == [("b", "test/mse", "nan")]
    assert "| b | test/mse | nan |" in write_results(tmp_path).read_text()


def test_identical_differences_give_no_t_test(tmp_path):
    runs = [
        _write_run(tmp_path, f"{s}{seed}", {"s": s, "seed": seed}, metrics={"test/acc": v})
        for s, seed, v in [("ci", 0, 0.8), ("ci", 1, 0.82), ("se", 0, 0.7), ("se", 1, 0.72)]
    ]
    (tmp_path / "index.json").write_text(json.dumps({"axes": ["s"], "baseline": {"s": "ci"}, "runs": runs}))
    res = analyze(tmp_path)
    (c,) = res.comparisons
    assert c.n_pairs == 2 and c.mean_diff == pytest.approx(-0.1) and math.isnan(c.p)
    assert "all differences equal" in write_results(tmp_path).read_text()


def test_numeric_axis_with_several_recipes_plots_one_panel_per_recipe(tmp_path):
    runs = []
    for recipe in ("dlinear_etth1", "patchtst_weather"):
        for h in (96, 192, 336):
            for s in ("ci", "ccm"):
                for seed in (0, 1):
                    v = h / 1000 + (0.01 if s == "ci" else 0.0) + 0.001 * seed
                    rid = f"{recipe[:3]}{h}{s}{seed}"
                    values = {
                        "recipe": recipe,
                        "params.pred_len": h,
                        "model.channel_strategy": s,
                        "seed": seed,
                    }
                    runs.append(_write_run(tmp_path, rid, values, metrics={"test/mse": v, "test/mae": v / 2}))
    (tmp_path / "index.json").write_text(
        json.dumps({"axes": AXES, "baseline": {"model.channel_strategy": "ci"}, "runs": runs})
    )
    md = write_results(tmp_path).read_text()
    import matplotlib.image

    for m in ("test_mse", "test_mae"):
        png = tmp_path / "plots" / f"{m}.png"
        assert png.read_bytes()[:8] == PNG
        img = matplotlib.image.imread(png)
        assert img.shape[1] > img.shape[0]  # two panels side by side
        assert f"(plots/{m}.png)" in md
    res = analyze(tmp_path)
    assert len(res.cells) == 12 and len(res.comparisons) == 12  # 6 ccm cells x 2 metrics
    assert all(c.n_pairs == 2 and c.left_out == 0 for c in res.comparisons)


def test_split_sizes_and_bookkeeping_are_columns_not_reported_metrics(sweep):
    root, _ = sweep
    res = analyze(root)
    assert res.metrics == ["test/mse", "test/mae", "test/acc"]
    assert "test/n" in res.frame.columns
    assert "repeats `fold`" not in results_markdown(res)  # no folds in this sweep: not listed as null


def test_with_folds_and_seeds_the_test_unit_is_the_fold(tmp_path):
    # 3 folds x 2 seeds: seeds of one fold share its test set, so the t-test runs over the 3 fold means
    vals = {  # (fold, seed) -> (cell "a", baseline "b")
        (0, 0): (0.70, 0.60), (0, 1): (0.74, 0.62),
        (1, 0): (0.65, 0.61), (1, 1): (0.69, 0.59),
        (2, 0): (0.80, 0.70), (2, 1): (0.78, 0.72),
    }  # fmt: skip
    runs = []
    for (fold, seed), pair in vals.items():
        for name, acc in zip(("a", "b"), pair, strict=True):
            rid = f"{name}{fold}{seed}"
            runs.append(
                _write_run(
                    tmp_path, rid, {"model": name, "seed": seed, "fold": fold}, metrics={"test/acc": acc}
                )
            )
    index = {
        "name": "f",
        "axes": ["model"],
        "repeat_axes": ["seed", "fold"],
        "baseline": {"model": "b"},
        "runs": runs,
    }
    (tmp_path / "index.json").write_text(json.dumps(index))
    c = next(c for c in analyze(tmp_path).comparisons if c.metric == "test/acc")
    fa = [np.mean([vals[(f, s)][0] for s in (0, 1)]) for f in range(3)]
    fb = [np.mean([vals[(f, s)][1] for s in (0, 1)]) for f in range(3)]
    ref = stats.ttest_rel(fa, fb)
    assert c.n_pairs == 6 and "3 folds" in c.note
    assert c.p == pytest.approx(ref.pvalue, rel=1e-12) and c.t == pytest.approx(ref.statistic, rel=1e-12)
    assert c.p != pytest.approx(stats.ttest_rel(*zip(*vals.values())).pvalue)  # not the 6 pseudo-pairs


def test_a_run_folder_with_metrics_is_done_whatever_the_index_says(tmp_path):
    # the sweep died while the run went on to finish: the folder, not the stale index, decides
    runs = [_write_run(tmp_path, "r1", {"m": "x", "seed": 0, "fold": None}, "running", metrics={"test/acc": 0.5}),
            _write_run(tmp_path, "r2", {"m": "x", "seed": 1, "fold": None}, "running")]  # fmt: skip
    (tmp_path / "index.json").write_text(json.dumps({"name": "s", "axes": ["m"], "runs": runs}))
    frame = collect(tmp_path)
    assert list(frame["status"]) == ["done", "running"] and frame["test/acc"].iloc[0] == 0.5
