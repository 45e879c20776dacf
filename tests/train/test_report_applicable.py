"""Run reports show only the checks that apply to the run (issue #12 item 8): ``None`` = does not apply."""

from __future__ import annotations

from sigattn.train.report import acceptance_checks, checks_table, write_report


def test_checks_that_do_not_apply_are_left_out(tmp_path):
    checks = {"clusters recovered: ARI >= 0.9": None, "test accuracy >= 90%": True}
    assert acceptance_checks(checks) == {"test accuracy >= 90%": True}  # not counted as a failure
    table = checks_table(checks)
    assert "| test accuracy >= 90% | PASS |" in table and "clusters recovered" not in table
    text = write_report(tmp_path, "Run x", {"test/mse": 0.5}, [], checks).read_text()
    assert "| test accuracy >= 90% | PASS |" in text and "clusters recovered" not in text


def test_no_checks_section_when_none_applies(tmp_path):
    text = write_report(
        tmp_path, "Run x", {"test/mse": 0.5}, [], {"clusters recovered: ARI >= 0.9": None}
    ).read_text()
    assert "## Checks" not in text and "FAIL" not in text
