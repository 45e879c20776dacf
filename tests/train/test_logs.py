"""Run logs: the CSV widens instead of dropping new columns; resume truncation; progress-bar switches."""

from __future__ import annotations

import csv

from sigattn.train.logs import CSVLog, progress_enabled
from sigattn.train.report import checks_table, metrics_table


def test_csv_widens_and_truncates(tmp_path):
    log = CSVLog(tmp_path / "s.csv")
    log.write({"step": 1, "loss": 0.5})
    log.write({"step": 2, "loss": 0.4, "acc": 0.75})  # a new column appears
    log.write({"step": 3, "loss": 0.3})
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [r["acc"] for r in rows] == ["", "0.75", ""] and [r["step"] for r in rows] == ["1", "2", "3"]
    again = CSVLog(tmp_path / "s.csv")  # reopened by a resumed run
    assert again.columns == ["step", "loss", "acc"]
    again.truncate_after("step", 2)
    again.write({"step": 3, "loss": 0.25, "acc": 1.0})
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [(r["step"], r["loss"]) for r in rows] == [("1", "0.5"), ("2", "0.4"), ("3", "0.25")]


def test_progress_switches(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(False)
    monkeypatch.delenv("CI")
    assert not progress_enabled(True)


def test_tables():
    assert "| test | acc | 0.5 |" in metrics_table({"test/acc": 0.5, "steps": 3.0})
    assert "| run | steps | 3 |" in metrics_table({"steps": 3.0})
    t = checks_table({"a": True, "b": False})
    assert "| a | PASS |" in t and "| b | FAIL |" in t
    d = checks_table({"(diagnostic) c": False, "(diagnostic) d": True})
    assert "| (diagnostic) c | no |" in d and "| (diagnostic) d | yes |" in d and "FAIL" not in d


def test_diagnostics_do_not_fail_a_demo(tmp_path):
    from sigattn.train.demo import write_demo_report
    from sigattn.train.report import acceptance_checks

    checks = {"acc >= 90%": True, "(diagnostic) raw pool": False}
    assert acceptance_checks(checks) == {"acc >= 90%": True}
    res = {
        "domain": "eeg",
        "seconds": 1.0,
        "error": None,
        "run_dir": str(tmp_path),
        "metrics": {},
        "plots": [],
    }
    report = write_demo_report(tmp_path, [dict(res, checks=checks)]).read_text()
    assert "| eeg | 1.0 | 1/1 | all pass |" in report and "| (diagnostic) raw pool | no |" in report
    report = write_demo_report(tmp_path, [dict(res, checks={**checks, "attention": False})]).read_text()
    assert "| eeg | 1.0 | 1/2 | some checks fail |" in report


def test_csv_rewrite_is_atomic(tmp_path, monkeypatch):
    import csv as csv_module

    log = CSVLog(tmp_path / "steps.csv")
    log.write({"step": 1, "loss": 0.5})
    before = log.path.read_text()

    class Boom(RuntimeError):
        pass

    def failing_writerows(self, rows):  # the process "dies" half-way through a widening rewrite
        raise Boom()

    monkeypatch.setattr(csv_module.DictWriter, "writerows", failing_writerows)
    try:
        log.write({"step": 2, "loss": 0.4, "acc": 0.9})
    except Boom:
        pass
    assert log.path.read_text() == before  # the complete old file survives
