"""Print a benchmark's report; with ``--write``, also put it into docs/benchmarks.md as one section.

Every script in ``benchmarks/`` takes ``--write`` (:func:`add_write_flag`) and ends with :func:`publish`: the
default prints only, so running a benchmark never changes the tree it runs from unless asked to
(``sigattn bench --write`` passes the flag to every script).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Written by the scripts in `benchmarks/` when run with `--write` (`sigattn bench --write` runs them\n"
    "all; without `--write` they only print). Each section states the machine it ran on; ratios compare\n"
    "tools measured side by side in the same run.\n"
)


def machine() -> str:
    """One line naming the machine a number came from."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} logical cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def add_write_flag(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--write`` (off by default) to a benchmark script's parser."""
    ap.add_argument(
        "--write",
        action="store_true",
        help="also write the report into docs/benchmarks.md (default: print it only)",
    )
    return ap


def sweep_parser(doc: str, quick_help: str, sweep: Path) -> argparse.ArgumentParser:
    """The parser of a benchmark that is a sweep: ``--quick`` (a smoke check), ``--sweep FILE``, ``--out DIR``,
    ``--write``."""
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--sweep", type=Path, default=sweep, help="the sweep file (default: %(default)s)")
    ap.add_argument("--out", help="the sweep folder (default: runs/sweeps/<name>)")
    ap.add_argument(
        "--redraw", action="store_true", help="train nothing: the table of the runs finished so far"
    )
    return add_write_flag(ap)


def sweep_time(sweep_dir: Path) -> str:
    """How long the sweep's finished runs took to train, from its index.json (each run's seconds in its worker):
    the sum, and that sum over the sweep's parallelism (about the wall time on an otherwise idle machine)."""
    import json

    try:
        index = json.loads((Path(sweep_dir) / "index.json").read_text())
    except (OSError, ValueError):
        return "its run index is unreadable"
    seconds = [r["seconds"] for r in index["runs"] if r["status"] == "done" and r.get("seconds")]
    parallel = 1
    spec = Path(sweep_dir) / "sweep.yaml"
    if spec.is_file():
        import yaml

        parallel = int((yaml.safe_load(spec.read_text()) or {}).get("parallel", 1))
    total = sum(seconds)
    return (
        f"its {len(seconds)} finished runs trained in {total / 60:.0f} min of worker time, about "
        f"{total / parallel / 60:.0f} min of wall time at {parallel} runs at a time"
    )


def publish(name: str, markdown: str, write: bool, doc: Path | None = None) -> Path | None:
    """Print ``markdown``; with ``write``, replace the section ``name`` of ``doc`` (docs/benchmarks.md) too.

    Returns the file written, or ``None`` when only printed (a line on stderr says how to write it).
    """
    print(markdown, flush=True)
    doc = DOC if doc is None else doc
    if not write:
        print(
            f"benchmarks: {name!r} section printed only; pass --write to put it into {doc}", file=sys.stderr
        )
        return None
    out = write_section(name, markdown, doc)
    print(f"benchmarks: wrote the {name!r} section of {out}", file=sys.stderr)
    return out


def write_section(name: str, markdown: str, doc: Path | None = None) -> Path:
    """Replace (or append) the section ``name`` of ``doc`` (default: docs/benchmarks.md) with ``markdown``."""
    doc = DOC if doc is None else doc
    text = doc.read_text() if doc.exists() else HEADER
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    return doc


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
