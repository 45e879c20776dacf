"""The README's Python example runs as written and its shape comments are true."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_shapes_match_comments():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(block, str(README), "exec"), ns)
    # every "# (a, b, ...)" comment after an assignment names the shape of that variable
    checked = 0
    for line in block.splitlines():
        m = re.match(r"(\w+) = .*#\s*\(([\d, ]+)\)", line)
        if m:
            want = tuple(int(v) for v in m.group(2).split(","))
            assert tuple(ns[m.group(1)].shape) == want, line
            checked += 1
    assert checked >= 3  # y, gates, pooled
