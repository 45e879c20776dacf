"""docs/bad-input.md cannot drift: every row names a test that exists, and the message fragment the row shows
is one of that test's string constants (not a comment or docstring), i.e. what the test asserts or feeds in (the
tests themselves run in this suite)."""

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


def _function_strings(path: Path, name: str) -> list[str] | None:
    """The string constants of test ``name`` (f-strings' literal parts included), without its docstring and
    comments: the words a test feeds to or expects from sigattn, not what it says about itself."""
    text = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # the docstring
            return [
                n.value
                for stmt in body
                for n in ast.walk(stmt)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
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
    strings = _function_strings(ROOT / path, name)
    assert strings is not None, f"{DOC.name}: row {what!r} names a missing test {test}"
    assert fragments, f"{DOC.name}: row {what!r} shows no message fragment in backticks"
    for frag in fragments:
        # verbatim in one of the test's strings, or as the test wrote it in a regex (escaped)
        forms = {frag, re.escape(frag), frag.replace("(", r"\(").replace(")", r"\)")}
        assert any(f in s for s in strings for f in forms), (
            f"{DOC.name}: {frag!r} (row {what!r}) is not in {test}"
        )
