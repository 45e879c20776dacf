"""docs/bad-input.md cannot drift: every row names a test that exists, and the message fragment the row shows
appears verbatim in that test's source, where the test asserts it (the tests themselves run in this suite)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-input.md"
ROW = re.compile(r"^\|(?P<input>[^|]+)\|(?P<says>.+)\|\s*`(?P<test>tests/[^`]+::[A-Za-z_0-9]+)`\s*\|\s*$")


def _rows() -> list[tuple[str, list[str], str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            fragments = re.findall(r"`([^`]+)`", m.group("says").replace("\\|", "|"))
            rows.append((m.group("input").strip(), fragments, m.group("test")))
    return rows


ROWS = _rows()


def _function_source(path: Path, name: str) -> str | None:
    text = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    return None


def test_the_table_has_rows_for_every_area():
    assert len(ROWS) >= 25, f"{DOC}: only {len(ROWS)} table rows parsed"
    areas = {test.split("/")[1] for _, _, test in ROWS}
    assert {"train", "tasks", "features"} <= areas, areas


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}:{r[0][:40]}" for i, r in enumerate(ROWS)])
def test_row_is_asserted_by_its_test(row):
    what, fragments, test = row
    path, name = test.split("::")
    assert (ROOT / path).is_file(), f"{DOC.name}: row {what!r} names a missing file {path}"
    source = _function_source(ROOT / path, name)
    assert source is not None, f"{DOC.name}: row {what!r} names a missing test {test}"
    assert fragments, f"{DOC.name}: row {what!r} shows no message fragment in backticks"
    for frag in fragments:
        # verbatim, or as the test wrote it in a regex (escaped) or a Python string (escaped quotes)
        forms = {frag, re.escape(frag), frag.replace("'", "\\'"), frag.replace('"', '\\"')}
        assert any(f in source for f in forms), f"{DOC.name}: {frag!r} (row {what!r}) is not in {test}"
