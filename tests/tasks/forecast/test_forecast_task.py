"""The forecasting Task: train-only scaler, no dropped windows (through the engine), M/S/MS, metrics, checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from sigattn.data_paths import shared_data_dir
from sigattn.tasks.forecast.task import ForecastParams, ForecastTask, ci_linear_baseline

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _csv(tmp_path, n=400, shift_after=None, name="toy.csv"):
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(n, 3))
    if shift_after is not None:
        vals[shift_after:] += 100.0
    df = pd.DataFrame(vals, columns=["x0", "x1", "OT"])
    df.insert(0, "date", pd.date_range("2021-01-01", periods=n, freq="D"))
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p, df


def _task(path, model=None, **kw):
    kw = {"seq_len": 24, "pred_len": 8, **kw}
    return ForecastTask(ForecastParams(data=str(path), **kw), model=model or {"name": "dlinear"})


def test_scaler_fit_on_train_rows_only(tmp_path):
    path, df = _csv(tmp_path, n=400, shift_after=300)  # the shift lies in val/test only (train = 280 rows)
    task = _task(path)
    task.build_datasets()
    train_rows = df[["x0", "x1", "OT"]].to_numpy()[:280]
    np.testing.assert_allclose(task.scaler.mean, train_rows.mean(0))
    np.testing.assert_allclose(task.scaler.std, train_rows.std(0))
    path2, _ = _csv(tmp_path, n=400, shift_after=None, name="unshifted.csv")
    task2 = _task(path2)
    task2.build_datasets()
    np.testing.assert_allclose(task2.scaler.mean, task.scaler.mean)  # test rows do not move the scaler
    x, _, _ = task.build_datasets()["train"][0]
    np.testing.assert_allclose(
        x.numpy().T, (train_rows[:24] - train_rows.mean(0)) / train_rows.std(0), rtol=1e-5
    )


def _ccm_recipe(path, tmp_path, **trainer) -> dict:
    """A tiny DLinear-CCM recipe on ``path`` (lookback 24, horizon 8), one epoch, quiet, into tmp_path/runs."""
    return {
        "task": "forecast",
        "params": {"data": str(path), "seq_len": 24, "pred_len": 8},
        "model": {"name": "dlinear", "channel_strategy": "ccm", "n_clusters": 2},
        "trainer": {
            "epochs": 1,
            "batch_size": 16,
            "amp": False,
            "out_dir": str(tmp_path / "runs"),
            "quiet": True,
            **trainer,
        },  # fmt: skip
        "optim": {"lr": 0.001},
    }


def test_no_dropped_test_windows_through_the_engine(tmp_path):
    from sigattn.train import Trainer
    from sigattn.train.config import recipe_from_dict

    path, _ = _csv(tmp_path, n=400)
    # custom split: train 280, test int(80) = 80 rows (+24 lookback) -> 104 - 24 - 8 + 1 = 73 windows.
    raw = _ccm_recipe(path, tmp_path, max_steps=2, eval_batch_size=32)
    metrics = Trainer(recipe_from_dict(raw, name="nodrop")).fit()
    assert metrics["test/n_windows"] == 73  # 73 = 2 * 32 + 9: the last, partial batch is kept
    assert metrics["val/n_windows"] == (280 + 40) - (280 - 24) - 24 - 8 + 1
    assert np.isfinite(metrics["test/mse"]) and np.isfinite(metrics["test/mse_raw"])


@pytest.mark.parametrize("features,c_in,c_out", [("M", 3, 3), ("S", 1, 1), ("MS", 3, 1)])
def test_feature_settings(tmp_path, features, c_in, c_out):
    path, _ = _csv(tmp_path)
    task = _task(path, features=features, model={"channel_strategy": "ccm", "n_clusters": 2})
    ds = task.build_datasets()
    x, y, _ = ds["train"][0]
    assert x.shape == (c_in, 24) and y.shape == (c_out, 8)
    batch = task.collate([ds["test"][i] for i in range(5)])
    model = task.build_model()
    loss, logs = task.loss(model, batch, epoch=0, step=0)
    assert loss.ndim == 0 and "cluster_loss" in logs
    out = task.predict(model.eval(), batch)
    assert out["pred"].shape == (5, c_out, 8) and out["index"].tolist() == [0, 1, 2, 3, 4]
    if features != "M":  # the target is OT, moved last
        np.testing.assert_allclose(y.numpy()[0], ds["train"].data[24:32, -1].numpy())


def test_raw_scale_metrics_follow_the_scaler(tmp_path):
    path, _ = _csv(tmp_path)
    task = _task(path, features="S")
    task.build_datasets()
    pred, true = torch.zeros(4, 1, 8), torch.ones(4, 1, 8) * 0.5
    m = task.metrics({"pred": pred, "true": true, "index": torch.arange(4)}, "val")
    assert m["mse"] == pytest.approx(0.25) and m["mae"] == pytest.approx(0.5)
    std = task.scaler.std[-1]
    assert m["mse_raw"] == pytest.approx(0.25 * std**2) and m["mae_raw"] == pytest.approx(0.5 * std)


def test_lookback_longer_than_training_split(tmp_path):
    path, _ = _csv(tmp_path, n=100)
    with pytest.raises(ValueError, match="longer than the training split"):
        _task(path, seq_len=90).build_datasets()
    with pytest.raises(ValueError, match="params.features"):
        ForecastTask(ForecastParams(features="XM"))


def test_ci_linear_baseline_is_least_squares_optimum():
    task = ForecastTask(ForecastParams(synthetic_length=600, seq_len=24, pred_len=8))
    ds = task.build_datasets()
    x, y = ds["train"].tensors()
    a = x.reshape(-1, 24).double().numpy()
    b = y.reshape(-1, 8).double().numpy()
    w, *_ = np.linalg.lstsq(np.c_[a, np.ones(len(a))], b, rcond=None)
    xt, yt = ds["test"].tensors()
    at = np.c_[xt.reshape(-1, 24).double().numpy(), np.ones(xt.shape[0] * xt.shape[1])]
    ref = np.mean((at @ w - yt.reshape(-1, 8).double().numpy()) ** 2)
    assert ci_linear_baseline(ds["train"], ds["test"], ridge=1e-9) == pytest.approx(ref, rel=1e-5)


def test_synthetic_ari_metric_and_demo_checks():
    task = ForecastTask(
        ForecastParams(synthetic_length=600, seq_len=24, pred_len=8), model={"channel_strategy": "ccm"}
    )
    task.build_datasets()
    labels = task.labels
    assign = torch.nn.functional.one_hot(torch.from_numpy((labels + 1) % 3), 3).float()[None].repeat(4, 1, 1)
    out = {
        "pred": torch.zeros(4, 9, 8),
        "true": torch.zeros(4, 9, 8),
        "index": torch.arange(4),
        "assign": assign,
    }
    m = task.metrics(out, "val")
    assert m["ari"] == 1.0 and m["n_clusters_used"] == 3
    checks = task.demo_checks({"test/ari": 0.95, "test/mse": 0.3, "test/ci_linear_mse": 0.4})
    assert all(checks.values())
    checks = task.demo_checks({"test/ari": 0.5, "test/mse": 0.5, "test/ci_linear_mse": 0.4})
    assert not any(checks.values())


def test_plots_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    task = ForecastTask(
        ForecastParams(synthetic_length=600, seq_len=24, pred_len=8), model={"channel_strategy": "ccm"}
    )
    ds = task.build_datasets()
    model = task.build_model().eval()
    batch = next(iter(DataLoader(ds["test"], batch_size=len(ds["test"]), collate_fn=task.collate)))
    with torch.no_grad():
        out = task.predict(model, batch)
    paths = task.plots(model, out, "test", tmp_path)
    assert {p.name for p in paths} == {"forecast_test.png", "assignments_test.png", "similarity_test.png"}
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.realdata
@pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data is absent")
def test_etth1_protocol_on_real_file():
    task = ForecastTask(ForecastParams(data="data:forecasting/ETTh1.csv", seq_len=96, pred_len=96))
    ds = task.build_datasets()
    assert task.split_kind == "ett_hour"
    assert [len(ds[s]) for s in ("train", "val", "test")] == [8449, 2785, 2785]
    raw = pd.read_csv(shared_data_dir() / "forecasting" / "ETTh1.csv").iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(task.scaler.mean, raw[:8640].mean(0))
    x, y, _ = ds["test"][2784]
    last = (raw[14400 - 96 : 14400] - raw[:8640].mean(0)) / raw[:8640].std(0)
    np.testing.assert_allclose(
        y.numpy().T, last, rtol=1e-5, atol=1e-5
    )  # the last test window ends at row 14400


def test_in_memory_long_frame_gives_same_windows_as_csv(tmp_path):
    from sigattn.tasks.forecast.data import from_long

    path, df = _csv(tmp_path)
    long = df.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    a = _task(path).build_datasets()["test"]
    b = ForecastTask(ForecastParams(seq_len=24, pred_len=8), frame=from_long(long)).build_datasets()["test"]
    # from_long sorts the ids (OT, x0, x1) and the target moves last: same column order as the CSV.
    assert len(a) == len(b)
    torch.testing.assert_close(a[5][0], b[5][0])
    c = ForecastTask(ForecastParams(seq_len=24, pred_len=8), frame=df).build_datasets()["test"]
    torch.testing.assert_close(a[7][1], c[7][1])


def test_ci_linear_baseline_ms_predicts_the_target_from_its_own_lookback():
    # MS: all channels in, the target out; a CI linear model forecasts the target from the target's lookback
    task = ForecastTask(
        ForecastParams(
            synthetic_length=600, seq_len=24, pred_len=8, features="MS", target="g0_c2", ci_baseline=True
        )
    )
    ds = task.build_datasets()
    t = task.full["train"].data.shape[1] - 1  # the target, moved last
    col = task.full["train"].data.numpy()[:, t].astype(np.float64)
    a = np.lib.stride_tricks.sliding_window_view(col, 32)  # lookback 24 + horizon 8
    w, *_ = np.linalg.lstsq(np.c_[a[:, :24], np.ones(len(a))], a[:, 24:], rcond=None)
    test = np.lib.stride_tricks.sliding_window_view(
        task.full["test"].data.numpy()[:, t].astype(np.float64), 32
    )
    ref = np.mean((np.c_[test[:, :24], np.ones(len(test))] @ w - test[:, 24:]) ** 2)
    model = task.build_model().eval()
    batch = task.collate([ds["test"][i] for i in range(len(ds["test"]))])
    with torch.no_grad():
        m = task.metrics(task.predict(model, batch), "test")
    assert m["ci_linear_mse"] == pytest.approx(ref, rel=1e-4)


def test_interpolation_never_fills_training_rows_from_later_splits(tmp_path):
    # n=400 with the 70/10/20 split: train rows [0, 280), val rows end at 320. A gap over the last training
    # rows is followed by a +100 jump that starts in validation.
    path, df = _csv(tmp_path, n=400, shift_after=280)
    raw = df[["x0", "x1", "OT"]].to_numpy().copy()
    df.loc[275:284, "x1"] = np.nan  # rows 275..279 in train, 280..284 in val
    df.to_csv(path, index=False)
    task = _task(path, fill_missing="interpolate")
    task.build_datasets()
    # independent expectation: training rows filled from training rows only (edge value = row 274),
    # validation rows filled from rows before the end of validation (linear from row 274 to row 285)
    col = raw[:, 1].copy()
    col[275:280] = raw[274, 1]
    col[280:285] = np.interp(np.arange(280, 285), [274, 285], [raw[274, 1], raw[285, 1]])
    expect = raw.copy()
    expect[:, 1] = col
    np.testing.assert_allclose(task.scaler.mean, expect[:280].mean(0))
    np.testing.assert_allclose(task.scaler.std, expect[:280].std(0))
    x, _, _ = task.build_datasets()["val"][len(task.build_datasets()["val"]) - 1]
    assert np.isfinite(x.numpy()).all()


def _hourly_csv(tmp_path, name, n=14400, drop=()):
    df = pd.DataFrame(
        {"date": pd.date_range("2016-07-01", periods=n, freq="h"), "OT": np.sin(np.arange(n) / 7)}
    )
    df = df.drop(index=list(drop)).reset_index(drop=True)
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_lowercase_ett_name_gets_the_ett_split_said_in_log_and_report_notes(tmp_path, caplog):
    path = _hourly_csv(tmp_path, "etth1.csv")
    task = _task(path)
    with caplog.at_level("INFO", logger="sigattn.tasks.forecast.task"):
        task.build_datasets()
    assert task.split_kind == "ett_hour"  # was "custom" (70/10/20) for a lower-case name
    assert task.borders == {"train": (0, 8640), "val": (8640 - 24, 11520), "test": (11520 - 24, 14400)}
    # row 8639 = 2016-07-01 00:00 + 8639 h = 2017-06-25 23:00 (359 days and 23 hours later)
    line = (
        f"{path}: split ett_hour (ETT hourly, 12/4/4 months): train rows 0-8639 (2016-07-01 00:00:00 to "
        "2017-06-25 23:00:00), val rows 8640-11519"
    )
    assert line in caplog.text
    assert "chosen because file name 'etth1.csv' starts with 'ETTh' (case-insensitive)" in caplog.text
    notes = task.report_notes()
    assert any(line in n and "chosen because file name 'etth1.csv'" in n for n in notes)
    explicit = _task(path, split="custom")
    explicit.build_datasets()
    assert explicit.split_kind == "custom"
    assert "chosen by params.split=custom" in explicit.report_notes()[0]


def test_irregular_timestamps_error_in_task_unless_allowed(tmp_path):
    path = _hourly_csv(tmp_path, "gappy.csv", n=400, drop=range(100, 200))
    with pytest.raises(ValueError) as e:
        _task(path).build_datasets()
    assert "gappy.csv: irregular timestamps: 1 gap in the 1-hour spacing" in str(e.value)
    assert "override params.irregular=allow" in str(e.value)
    ds = _task(path, irregular="allow").build_datasets()
    assert len(ds["train"]) == 210 - 24 - 8 + 1  # 300 rows: 70% = 210 training rows
    with pytest.raises(ValueError, match=r"params.irregular must be one of \('error', 'allow'\), got 'skip'"):
        _task(path, irregular="skip")


def test_real_data_report_shows_only_checks_that_apply(tmp_path):
    from sigattn.train import Trainer
    from sigattn.train.config import recipe_from_dict

    path, _ = _csv(tmp_path, n=400)
    raw = _ccm_recipe(path, tmp_path, max_steps=1, eval_batch_size=128)
    trainer = Trainer(recipe_from_dict(raw, name="real"))
    trainer.fit()
    report = (trainer.run_dir / "report.md").read_text()
    # no ground-truth clusters and no CI baseline on this run: neither demo check applies
    assert "clusters recovered" not in report and "CCM beats" not in report and "## Checks" not in report
    # the report says which split was chosen and why (the task's report_notes hook)
    assert f"{path}: split custom (70/10/20)" in report and "chosen because file name 'toy.csv'" in report
    task = trainer.task
    assert task.demo_checks({"test/mse": 0.3}) == {}
    # with the CI baseline computed (params.ci_baseline), the CCM-vs-CI check applies, the ARI one does not
    assert task.demo_checks({"test/mse": 0.3, "test/ci_linear_mse": 0.4}) == {
        "CCM beats the best CI linear model on test MSE": True
    }
    ci = ForecastTask(ForecastParams(data=str(path)), model={"channel_strategy": "ci"})
    assert ci.demo_checks({"test/mse": 0.3, "test/ci_linear_mse": 0.4}) == {}


def test_bad_params_are_one_line_when_the_recipe_is_read(tmp_path, capsys):
    from sigattn.cli import main

    def run(*overrides):
        recipe = tmp_path / "r.yaml"
        recipe.write_text("task: forecast\nparams: {seq_len: 24, pred_len: 8}\ntrainer: {epochs: 1}\n")
        rc = main(["train", str(recipe), *overrides, "--run-dir", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1, err
        return err

    assert "params.split must be one of ('auto', 'ett_hour', 'ett_minute', 'custom'), got 'ETT'" in run(
        "params.split=ETT"
    )
    assert "params.features must be one of ('M', 'S', 'MS'), got 'X'" in run("params.features=X")
    # a lookback longer than the data allow is a data error naming the data, found when they are loaded
    err = run("params.seq_len=20000")
    assert "synthetic" in err and "lookback seq_len=20000 is longer than the training split" in err
