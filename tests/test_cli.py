"""The `sigattn` command: help texts, info, train errors, resume, eval, export (vs onnxruntime), demo, bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sigattn.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def toy_recipe(tmp_path: Path, **trainer) -> Path:
    raw = {
        "task": "toy",
        "params": {
            "n_channels": 4,
            "n_times": 24,
            "min_times": 12,
            "n_classes": 2,
            "n_train": 32,
            "n_val": 16,
            "n_test": 16,
        },  # fmt: skip
        "model": {"hidden": 8},
        "trainer": {
            "epochs": 1,
            "batch_size": 16,
            "quiet": True,
            "out_dir": str(tmp_path / "runs"),
            **trainer,
        },
    }
    p = tmp_path / "toy.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("cmd", ["train", "eval", "folds", "export", "bench", "info", "demo"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: sigattn {cmd}" in out and len(out) > 150
    assert cmd in build_parser().format_help()


def test_info_runs(monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/tmp/sigattn-numba-cache-test")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__.split('+')[0]}" in out
    assert "numba threading layer" in out and "/tmp/sigattn-numba-cache-test" in out
    assert "CUDA" in out and "data dir" in out


def test_train_config_errors_are_clear(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err
    rec = toy_recipe(tmp_path)
    assert main(["train", str(rec), "trainer.epoch=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'trainer.epoch'" in err and "did you mean 'trainer.epochs'" in err
    assert main(["train", str(rec), "optim.lr=fast"]) == 2
    assert "'optim.lr' expects float" in capsys.readouterr().err


def test_train_resume_eval_export(tmp_path, capsys):
    rec = toy_recipe(tmp_path, run_name="r")
    assert main(["train", str(rec)]) == 0
    run = tmp_path / "runs" / "toy" / "r"
    first = json.loads((run / "metrics.json").read_text())
    assert first["steps"] == 2
    # continue the finished run for one more epoch from its stored config (no recipe file needed)
    assert main(["train", "--resume", str(run), "trainer.epochs=2"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["steps"] == 4 and m["epochs"] == 2
    capsys.readouterr()

    assert main(["eval", str(run), "--split", "val", "test", "--json", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["test/acc"] == m["test/acc"] and ev["val/acc"] == m["val/acc"]

    onnx_path = tmp_path / "m.onnx"
    assert (
        main(["export", str(run / "checkpoints" / "best.ckpt"), "--format", "onnx", "-o", str(onnx_path)])
        == 0
    )
    import onnxruntime as ort

    from sigattn.train.tools import load_trained

    _, model, _ = load_trained(run)
    x = torch.randn(3, 4, 40)  # other batch size and length than the traced example (dynamic axes)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]
    got = sess.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)

    ts_path = tmp_path / "m.ts.pt"
    assert main(["export", str(run), "--format", "torchscript", "-o", str(ts_path)]) == 0
    with torch.no_grad():
        np.testing.assert_allclose(torch.jit.load(str(ts_path))(x).numpy(), ref, atol=1e-5)
    assert "max |exported - eager|" in capsys.readouterr().out


def test_eval_bad_paths(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "no such run folder or checkpoint" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04garbage")
    assert main(["export", str(bad), "--format", "onnx"]) == 2
    assert "bad.ckpt" in capsys.readouterr().err


def test_demo_toy_quick_writes_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--only", "toy", "--quick", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "| toy |" in report and "### Checks" in report and ("PASS" in report or "FAIL" in report)
    links = [line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert links and all((out / link).is_file() for link in links)
    assert (out / "toy" / "metrics.json").is_file()
    with pytest.raises(ValueError, match="unknown demo domain"):
        main(["demo", "--only", "audio", "--out", str(out)])


def test_bench_runs_repo_scripts(tmp_path, monkeypatch, capsys):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "_report.py").write_text("raise SystemExit('helpers are not benchmarks')\n")
    (bench / "speed.py").write_text(
        "import sys, pathlib; pathlib.Path('ran.txt').write_text(' '.join(sys.argv[1:]))\n"
    )
    (bench / "other.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["other", "speed"]
    assert main(["bench", "--only", "speed", "--quick"]) == 0
    assert (tmp_path / "ran.txt").read_text() == "--quick"
    assert main(["bench"]) == 1  # `other` fails
    with pytest.raises(SystemExit, match="unknown benchmark"):
        main(["bench", "--only", "nope"])


def test_demo_strict_counts_acceptance_checks_only(tmp_path, monkeypatch):
    import sigattn.train.demo as demo

    def fake(checks):
        result = {"domain": "eeg", "error": None, "checks": checks}
        return lambda out, only, quick: (tmp_path / "report.md", [result])

    monkeypatch.setattr(demo, "run_demo", fake({"accuracy": True, "(diagnostic) raw pool": False}))
    assert main(["demo", "--strict", "--out", str(tmp_path)]) == 0
    monkeypatch.setattr(demo, "run_demo", fake({"accuracy": False, "(diagnostic) raw pool": True}))
    assert main(["demo", "--strict", "--out", str(tmp_path)]) == 1
    assert main(["demo", "--out", str(tmp_path)]) == 0
