"""EEGTask: splits and alignment honesty, loss/predict/metrics vs scikit-learn, plots, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

from sigattn.tasks import get_task
from sigattn.tasks.eeg.task import EEGParams, EEGTask, split_and_align


def _params(**kw) -> EEGParams:
    return EEGParams(**(dict(n_subjects=2, n_trials_per_class=12, synthetic_sfreq=64.0, duration=1.0) | kw))


def _task(model: dict | None = None, **kw) -> EEGTask:
    """A small synthetic task; DBConformer with 0.25-s tokens unless ``model`` says otherwise."""
    return EEGTask(_params(**kw), model={"patch_size": 16} if model is None else model)


def test_registry_and_splits_are_disjoint_and_val_from_train():
    assert get_task("eeg") is EEGTask
    task = _task()
    ds = task.build_datasets()
    s = task.split
    tr, va, te = (set(s[k].tolist()) for k in ("train", "val", "test"))
    assert not (tr & va or tr & te or va & te) and len(tr | va | te) == 48
    y, subj = task.trials.y, task.trials.subject
    for k in (0, 1):
        for sub in (0, 1):  # chronological: every test trial comes after the subject's train/val trials
            last_fit = max(i for i in tr | va if subj[i] == sub and y[i] == k)
            assert min(i for i in te if subj[i] == sub and y[i] == k) > last_fit
    x, label, idx = ds["test"][0]
    assert x.shape == (22, 64) and int(idx) == s["test"][0] and int(label) == y[s["test"][0]]


def test_inductive_alignment_uses_training_reference_only():
    p = _params()
    task = EEGTask(p)
    task.build_datasets()
    raw = task.trials.X.astype(np.float64)
    s = split_and_align(task.trials, p)
    fold_train = np.sort(np.concatenate([s["train"], s["val"]]))
    for sub in (0, 1):
        tr = fold_train[task.trials.subject[fold_train] == sub]
        te = s["test"][task.trials.subject[s["test"]] == sub]
        r = np.mean([np.cov(x) for x in raw[tr]], axis=0)  # DBConformer: np.cov per trial
        w, v = np.linalg.eigh(r)
        r_inv = (v / np.sqrt(w)) @ v.T
        np.testing.assert_allclose(s["X"][tr], np.einsum("cd,ndt->nct", r_inv, raw[tr]), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(s["X"][te], np.einsum("cd,ndt->nct", r_inv, raw[te]), rtol=1e-4, atol=1e-4)
    # changing the test trials does not change the aligned training trials (no leakage)
    task.trials.X[s["test"]] *= 3.0
    s2 = split_and_align(task.trials, p)
    np.testing.assert_allclose(s2["X"][s["train"]], s["X"][s["train"]], rtol=1e-5)


def test_online_alignment_is_causal():
    p = _params(alignment="online")
    task = EEGTask(p)
    task.build_datasets()
    s = task.split
    te0 = s["test"][task.trials.subject[s["test"]] == 0]
    task.trials.X[te0[-1]] *= 5.0  # the last test trial must not influence the earlier ones
    s2 = split_and_align(task.trials, p)
    np.testing.assert_allclose(s2["X"][te0[:-1]], s["X"][te0[:-1]], rtol=1e-5)


def test_loss_predict_metrics_and_checks():
    task = _task()
    ds = task.build_datasets()
    torch.manual_seed(0)
    model = task.build_model().eval()
    batch = task.collate([ds["test"][i] for i in range(len(ds["test"]))])
    loss, logs = task.loss(model, batch, epoch=0, step=0)
    assert loss.ndim == 0 and 0.0 <= logs["acc"] <= 1.0
    out = task.predict(model, batch)
    assert out["channel_weights"].shape == (len(ds["test"]), 22)
    torch.testing.assert_close(out["logits"], model(batch["x"]))
    m = task.metrics(out, "test")
    y, pred = out["y"].numpy(), out["logits"].argmax(1).numpy()
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert len(task.last_top_channels["test"]) == 5 and "informative_in_top5" in m
    # the acceptance check ranks the attention rollout; the raw pool weights are a diagnostic
    torch.testing.assert_close(out["channel_weights"], model.channel_weights(batch["x"], method="rollout"))
    torch.testing.assert_close(out["channel_pool_weights"], model.channel_weights(batch["x"], method="pool"))
    assert len(task.last_top_channels["test_pool"]) == 5
    checks = task.demo_checks({"test/accuracy": 0.95, "test/informative_in_top5": 1.0})
    main = {k: v for k, v in checks.items() if not k.startswith("(diagnostic)")}
    assert all(main.values()) and len(main) == 2 and "rollout" in list(main)[1]
    assert any("raw pool weights" in k for k in checks)
    failing = task.demo_checks({"test/accuracy": 0.5, "test/informative_in_top5": 0.5})
    assert not any(v for k, v in failing.items() if not k.startswith("(diagnostic)"))


def test_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("mne")
    task = _task(n_subjects=1)
    ds = task.build_datasets()
    model = task.build_model().eval()
    batch = task.collate([ds["test"][i] for i in range(len(ds["test"]))])
    paths = task.plots(model, task.predict(model, batch), "test", tmp_path)
    names = [p.name for p in paths]
    assert names == ["test_confusion.png", "test_occlusion.png", "test_channel_attention.png",
                     "test_channel_pool.png"]  # fmt: skip
    assert len(task.last_top_channels["test_occlusion"]) == 5
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.parametrize("name", ["eegnet", "shallow", "eegconformer"])
def test_braindecode_baselines_build(name):
    pytest.importorskip("braindecode")
    task = _task({"name": name}, n_subjects=1, duration=2.0)
    ds = task.build_datasets()
    model = task.build_model().eval()
    batch = task.collate([ds["train"][i] for i in range(4)])
    assert model(batch["x"]).shape == (4, 2)


def test_bad_params():
    with pytest.raises(ValueError, match="unknown alignment 'ea'"):
        EEGTask(_params(alignment="ea")).build_datasets()
    with pytest.raises(ValueError, match="fold 5 out of range: protocol 'kfold' has 5 folds"):
        EEGTask(_params(protocol="kfold", fold=5)).build_datasets()
    with pytest.raises(ValueError, match="unknown EEG source 'edf'"):
        EEGTask(_params(source="edf")).build_datasets()
    with pytest.raises(ValueError, match=r"unknown model.name 'eegnex'; did you mean 'eegnet'\?"):
        _task({"name": "eegnex"})


def test_csp_lda_decodes_synthetic_motor_imagery():
    pytest.importorskip("mne")
    from sigattn.tasks.eeg.baselines import csp_lda

    task = EEGTask(_params(n_subjects=1, n_trials_per_class=30))
    task.build_datasets()
    s, y = task.split, task.trials.y
    fit = np.sort(np.concatenate([s["train"], s["val"]]))
    pred = csp_lda(s["X"][fit], y[fit], s["X"][s["test"]])
    assert (pred == y[s["test"]]).mean() >= 0.9


def test_folds_run_every_fold_through_the_trainer_and_resume(tmp_path, capsys):
    import json

    import yaml

    from sigattn.cli import main

    recipe = {
        "task": "eeg",
        "params": {"n_subjects": 1, "n_trials_per_class": 10, "synthetic_sfreq": 32.0, "duration": 1.0,
                   "protocol": "kfold", "n_splits": 3},
        "model": {"patch_size": 8, "depth_temporal": 1, "depth_spatial": 1},
        "trainer": {"epochs": 1, "batch_size": 8, "amp": False, "quiet": True, "device": "cpu"},
        "optim": {"name": "adam", "lr": 0.001},
        "sched": {"name": "none"},
    }  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["folds", str(path), "--seeds", "0", "--out", str(tmp_path / "cv")]) == 0
    out = tmp_path / "cv"
    assert f"summary: {out / 'summary.md'}" in capsys.readouterr().out
    # a sweep with a fold axis: one ordinary run folder per fold x seed, listed in index.json
    index = json.loads((out / "index.json").read_text())
    runs = {(r["values"]["fold"], r["values"]["seed"]): out / r["dir"] for r in index["runs"]}
    assert sorted(runs) == [(0, 0), (1, 0), (2, 0)]
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(p.name for p in runs.values())
    assert all(r["status"] == "done" for r in index["runs"]) and (out / "summary.md").is_file()
    accs = [json.loads((runs[k, 0] / "metrics.json").read_text())["test/accuracy"] for k in range(3)]
    summary = (out / "summary.md").read_text()
    mean, std = sum(accs) / 3, (sum((a - sum(accs) / 3) ** 2 for a in accs) / 3) ** 0.5
    assert f"accuracy {mean:.4g} +- {std:.4g}" in summary and "kappa" in summary
    # a rerun trains nothing: every run folder has its metrics
    stamp = (runs[1, 0] / "metrics.json").stat().st_mtime_ns
    assert main(["folds", str(path), "--seeds", "0", "--out", str(out)]) == 0
    assert (runs[1, 0] / "metrics.json").stat().st_mtime_ns == stamp
    assert "3 runs (3 already done)" in capsys.readouterr().out


def test_occlusion_importance_finds_the_only_used_electrode():
    from sigattn.tasks.eeg.importance import occlusion_importance

    lin = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 2.0, 0.0], [0.0, -2.0, 0.0]]))
    model = _MeanOverTime(lin)
    x = torch.randn(16, 3, 10)
    y = (x[:, 1].mean(1) < 0).long()  # channel 1 decides, with the sign the weights encode
    imp = occlusion_importance(model, x, y)
    # by hand: zeroing channel 1 sets both logits to 0, so log p(y) becomes log(1/2)
    logits = lin(x.mean(2))
    ref = (torch.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1) - np.log(0.5)).mean()
    torch.testing.assert_close(imp[1], ref)
    assert imp[0] == 0 and imp[2] == 0


class _MeanOverTime(torch.nn.Module):
    def __init__(self, lin: torch.nn.Module) -> None:
        super().__init__()
        self.lin = lin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.mean(2))


def test_fold_missing_a_class_is_reported(caplog):
    from sigattn.tasks.eeg.datasets import Trials

    rng = np.random.default_rng(0)
    n = 20
    y = np.repeat([0, 1], 10)  # like eegmmidb 4-class: blocks of runs with different classes
    t = Trials(rng.standard_normal((n, 3, 40)).astype(np.float32), y, np.zeros(n, int), np.zeros(n, int),
               np.zeros(n, int), ["C3", "Cz", "C4"], 64.0, ["left", "right"])  # fmt: skip
    with caplog.at_level("WARNING"):
        split_and_align(t, EEGParams(protocol="kfold", n_splits=2, fold=0, val_fraction=0.2))
    assert "kfold fold 0 tests no trial of classes ['right']" in caplog.text


def test_branch_ablation_sees_an_ignored_spatial_branch():
    from sigattn.models.dbconformer import DBConformer
    from sigattn.tasks.eeg.importance import branch_ablation_accuracy

    torch.manual_seed(0)
    m = DBConformer(n_chans=4, n_outputs=2, n_times=64, sfreq=32).eval()
    x, y = torch.randn(16, 4, 64), torch.arange(16) % 2
    with torch.no_grad():
        m.head[0].weight[:, 40:] = 0  # the head reads the temporal half only
    ab = branch_ablation_accuracy(m, x, y)
    assert ab["spatial_frozen"] == ab["full"]
    with torch.no_grad():
        pred = m.head(m.forward_features(x)[0]).argmax(1)
    assert ab["full"] == pytest.approx(float((pred == y).float().mean()))


def test_branch_diagnostic_asks_whether_the_spatial_branch_decodes_alone():
    task = EEGTask(_params())
    task.last_branch_ablation = {"full": 1.0, "spatial_frozen": 1.0, "temporal_frozen": 0.98}
    diag = {k: v for k, v in task.demo_checks({"test/accuracy": 1.0}).items() if "spatial branch" in k}
    assert list(diag.values()) == [True] and "98.0% with the temporal features frozen" in list(diag)[0]
    task.last_branch_ablation = {"full": 1.0, "spatial_frozen": 1.0, "temporal_frozen": 0.5}  # spatial unused
    diag = {k: v for k, v in task.demo_checks({"test/accuracy": 1.0}).items() if "spatial branch" in k}
    assert list(diag.values()) == [False]


def test_demo_check_reads_c3_c4_with_feet():
    """3 classes: the generator's informative electrodes include Cz, the acceptance check names C3 and C4."""
    task = EEGTask(_params(n_classes=3))
    task.build_datasets()
    assert list(task.trials.informative) == ["C3", "C4", "Cz"]
    task.last_top_channels["test"] = ["C4", "C3", "P2", "FC1", "Fz"]
    checks = task.demo_checks(
        {"test/accuracy": 1.0, "test/informative_in_top5": 2 / 3, "test/hand_electrodes_in_top5": 1.0}
    )
    main = {k: v for k, v in checks.items() if not k.startswith("(diagnostic)")}
    assert all(main.values()) and not [v for k, v in checks.items() if "Cz (feet)" in k][0]
    checks = task.demo_checks(
        {"test/accuracy": 1.0, "test/informative_in_top5": 2 / 3, "test/hand_electrodes_in_top5": 0.5}
    )
    assert not all(v for k, v in checks.items() if not k.startswith("(diagnostic)"))


def test_demo_criteria_do_not_apply_to_real_data():
    """On real recordings there are no planted electrodes and no 90% target: both acceptance checks are None
    (left out of report.md), whatever the metrics; the same metrics on synthetic data are judged."""
    task = EEGTask(_params())
    task.build_datasets()
    metrics = {"test/accuracy": 0.55, "test/informative_in_top5": float("nan")}
    synthetic = {k: v for k, v in task.demo_checks(metrics).items() if not k.startswith("(diagnostic)")}
    assert list(synthetic.values()) == [False, None]  # accuracy judged; no electrode metric computed
    task.params.source = "eegmmidb"
    real = {k: v for k, v in task.demo_checks(metrics).items() if not k.startswith("(diagnostic)")}
    assert len(real) == 2 and all(v is None for v in real.values())


def test_folds_of_a_task_without_folds_is_one_line_exit_2(tmp_path, capsys):
    from pathlib import Path

    from sigattn.cli import main

    toy = Path(__file__).resolve().parents[3] / "recipes" / "toy.yaml"
    assert main(["folds", str(toy), "--out", str(tmp_path / "cv")]) == 2
    assert "task 'toy' has no folds" in capsys.readouterr().err
    assert not (tmp_path / "cv").exists()
