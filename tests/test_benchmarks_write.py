"""Benchmarks print by default and write docs/benchmarks.md only with --write (issue #12 item 9).

No real benchmark runs here: each script's measuring functions are stubbed, so its real ``main`` runs in well
under a second and only the report layer and the argument handling are exercised.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["eeg", "features", "forecast", "layers", "speaker", "speaker_attention"]
DOC_TEXT = "# Benchmarks\n\nhand-written intro\n\n<!-- BEGIN other -->\nkept\n<!-- END other -->\n"


@pytest.fixture
def doc(tmp_path, monkeypatch):
    """A throw-away docs/benchmarks.md in place of the repository's."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import _report

    path = tmp_path / "benchmarks.md"
    path.write_text(DOC_TEXT)
    monkeypatch.setattr(_report, "DOC", path)
    yield path
    sys.path.remove(str(ROOT))


def test_publish_prints_only_unless_write(doc, capsys):
    from benchmarks._report import publish

    assert publish("speed", "## Speed\n\n| a |", write=False) is None
    assert doc.read_text() == DOC_TEXT  # unchanged
    out, err = capsys.readouterr()
    assert "## Speed" in out and "pass --write to put it into" in err
    assert publish("speed", "## Speed\n\n| a |", write=True) == doc
    assert doc.read_text() == DOC_TEXT + "\n<!-- BEGIN speed -->\n## Speed\n\n| a |\n<!-- END speed -->\n"


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_parses_write_off_by_default(doc, name):
    mod = importlib.import_module(f"benchmarks.{name}")
    assert mod.build_parser().parse_args([]).write is False
    assert mod.build_parser().parse_args(["--write"]).write is True


def _stub(name: str, mod, monkeypatch) -> list[str]:
    """Replace the measuring functions of benchmarks/<name>.py; returns the argv of a tiny run."""
    monkeypatch.setattr(mod, "machine", lambda: "stub machine")
    if name == "eeg":
        (data := doc_dir(mod) / "eeg" / "eegmmidb").mkdir(parents=True)
        (data / "S001R04.edf").write_bytes(b"")
        monkeypatch.setattr(mod, "shared_data_dir", lambda: data.parents[1])
        monkeypatch.setattr(mod, "run_sweep", lambda *a, **k: types.SimpleNamespace(dir=Path("sweep-dir")))
        monkeypatch.setattr(
            mod, "csp_lda_scores", lambda sweep: ({"recipe": {0: {"accuracy": 0.5}}}, "2 trials")
        )
        monkeypatch.setattr(mod, "tables", lambda d, csp: "| acc |")
        monkeypatch.setattr(mod, "throughput", lambda *a, **k: "fast")
        monkeypatch.setattr(mod.torch, "set_num_threads", lambda n: None)
        return ["--quick"]
    if name == "features":
        ratio = {f"{k}_{n}thr": 1.0 for k in ("eeg64_vs_mne", "eeg32_vs_mne") for n in range(1, 257)}
        fbank = {"fbank_vs_torchaudio_1thr": 1.0, "fbank_of_fft_bound_1thr": 0.5}
        monkeypatch.setattr(mod, "bench_fbank", lambda *a: ("fbank", fbank))
        monkeypatch.setattr(mod, "bench_eeg", lambda *a: ("eeg", {**ratio, "fir_vs_mne_1thr": 1.0}))
        monkeypatch.setattr(mod, "bench_first_call", lambda: "first call")
        return ["--quick"]
    if name == "forecast":
        (sweep_dir := doc_dir(mod) / "forecast-sweep").mkdir(exist_ok=True)
        runs = [
            {"status": "done", "values": {"recipe": "a"}},
            {"status": "pending", "values": {"recipe": "b"}},
        ]
        (sweep_dir / "index.json").write_text(json.dumps({"runs": runs}))
        monkeypatch.setattr(mod, "run_sweep", lambda *a, **k: sweep_dir)
        monkeypatch.setattr(mod, "tables", lambda d: ("| MSE |", ["ETTh1 dlinear H=96: 1 of 3 seeds"]))
        return ["--quick"]
    if name == "layers":
        monkeypatch.setattr(mod, "configs", lambda c, t: [("block alone", None, None)])
        monkeypatch.setattr(mod, "measure", lambda *a, **k: {"block alone": (1e-3, 1.0, 1.0)})
        return ["--quick", "--no-compile-check", "--threads", "0"]
    if name == "speaker":
        import torch

        rates = {"SpeechBrain ECAPA_TDNN [1024]x4+1536": 1.0, "sigattn ECAPATDNN C=1024": 2.0}
        for cls in ("recipe_network", "SBWrap"):
            monkeypatch.setattr(mod, cls, lambda *a, **k: torch.nn.Identity())
        monkeypatch.setattr(mod, "make_step", lambda *a, **k: None)
        monkeypatch.setattr(mod, "time_steps", lambda *a, **k: rates)
        monkeypatch.setattr(mod, "embed", lambda *a, **k: time.sleep(0.001))
        monkeypatch.setattr(mod.torch.cuda, "is_available", lambda: False)
        return ["--quick"]
    if name == "speaker_attention":
        monkeypatch.setattr(mod, "run_sweep", lambda *a, **k: Path("sweep-dir"))
        monkeypatch.setattr(mod, "nolearning", lambda *a, **k: {"plain": {"eer": [8.9]}})
        monkeypatch.setattr(mod, "tables", lambda d, b: ("| EER |", "| dEER |", ["no model beats it"]))
        return ["--quick"]
    raise AssertionError(name)


def doc_dir(mod) -> Path:
    from benchmarks import _report

    return _report.DOC.parent


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_writes_docs_only_with_write(doc, name, monkeypatch, capsys):
    mod = importlib.import_module(f"benchmarks.{name}")
    argv = _stub(name, mod, monkeypatch)
    mod.main(argv)
    assert doc.read_text() == DOC_TEXT  # printed only
    assert "stub machine" in capsys.readouterr().out
    mod.main(argv + ["--write"])
    text = doc.read_text()
    assert text.startswith(DOC_TEXT) and f"<!-- BEGIN {name} -->" in text and "stub machine" in text


def test_sigattn_bench_passes_write_through(tmp_path, monkeypatch):
    from sigattn.cli import main

    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "speed.py").write_text(
        "import sys\nfrom pathlib import Path\n"
        "Path(__file__).with_name('argv.txt').write_text(' '.join(sys.argv[1:]) or '-')\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--only", "speed", "--quick"]) == 0
    assert (bench / "argv.txt").read_text() == "--quick"
    assert main(["bench", "--only", "speed", "--write"]) == 0
    assert (bench / "argv.txt").read_text() == "--write"
