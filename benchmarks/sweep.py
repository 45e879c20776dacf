"""Speed of the sweep machinery: a sweep's wall time against the training time of its runs.

    python benchmarks/sweep.py [--quick] [--epochs 50 150] [--write]

8 runs of the toy recipe (``recipes/toy.yaml``: ``model.attention`` in {se, eca, cbam, none} x seeds {0, 1}) run
as one sweep with ``parallel: 2, threads: 1`` (two worker processes, one thread each), once per run size
(``trainer.epochs``; 50 epochs train for ~5-10 s on one core). The ideal is the runs' summed training loop
time (``train_seconds`` of each ``metrics.json``) divided by the parallelism; the ratio of the sweep's wall
time to it is the machinery's cost. The overhead is split into:

- **in the run, outside the training loop**: the sum over runs of index.json's ``seconds`` (the whole run in its
  worker) minus ``train_seconds``, over the parallelism: building the data and model, the test evaluation,
  the curves plot and report.md, and on each worker's first run the import of torch, sigattn and matplotlib;
- **pool**: the time until the last run finished minus the sum of the runs' ``seconds`` over the parallelism:
  starting the worker processes (forked on a CPU-only Linux machine, else spawned), handing out runs, and the
  slot left idle
  when the last run of the other slot is still going;
- **results**: results.csv/results.md/plots after the last run (with the cold import of pandas/matplotlib).

One run is also timed in this process (imports already warm) to show its parts: Trainer set-up (data, model),
training loop, and finish (test evaluation, plot, report); and the cold import of the trainer in a fresh
process. ``--quick``: 4 runs (se, none x 2 seeds) of 10 epochs.

Prints a markdown report; ``--write`` also writes it as the "sweep" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# no torch at the top: the sweep's workers are spawned and import this module again (as __mp_main__)
from benchmarks._report import add_write_flag, machine, markdown_table, publish  # noqa: E402

TOY = ROOT / "recipes" / "toy.yaml"
PARALLEL, THREADS = 2, 1
HEAD_SPEED = ["epochs", "runs", "train s / run", "sweep wall s", f"ideal: Σ train / {PARALLEL}", "wall / ideal",
              f"Σ run / {PARALLEL}", "wall / Σ run"]  # fmt: skip
HEAD_SPLIT = ["epochs", "wall - ideal", "in the runs, outside training (s per run: worker's first / later)",
              "pool: worker start, scheduling, idle slot", "results.csv/md/plots"]  # fmt: skip


def measure_sweep(out: Path, attentions: list[str], seeds: list[int], epochs: int) -> dict:
    """Run the sweep once; its wall time, when its last run finished, and the per-run seconds."""
    from sigattn.train.sweep import sweep_from_recipe

    sweep = sweep_from_recipe(TOY, {"model.attention": attentions}, seeds=seeds, parallel=PARALLEL,
                              threads=THREADS, overrides={"trainer.epochs": epochs, "trainer.quiet": True},
                              out=str(out))  # fmt: skip
    stamps: list[float] = []
    finished = sweep._finished

    def stamped(*a, **k):  # the moment each run comes back to the sweep
        finished(*a, **k)
        stamps.append(time.perf_counter())

    sweep._finished = stamped
    t0 = time.perf_counter()
    counts = sweep.run(quiet=True, start="auto")  # as `sigattn sweep` starts its workers (this process has
    # computed nothing yet: the in-process run of anatomy() comes after the sweeps)
    wall = time.perf_counter() - t0
    if counts.get("done", 0) != len(sweep.runs):
        raise RuntimeError(f"benchmarks/sweep.py: not every run finished: {counts} (see {out}/index.json)")
    index = json.loads((out / "index.json").read_text())
    seconds = [float(r["seconds"]) for r in index["runs"]]
    train = [
        json.loads((out / r["dir"] / "metrics.json").read_text())["train_seconds"] for r in index["runs"]
    ]
    # the first `parallel` runs are each worker's first (the sweep hands out the runs in order)
    first = [s - t for s, t in zip(seconds[:PARALLEL], train[:PARALLEL], strict=True)]
    later = [s - t for s, t in zip(seconds[PARALLEL:], train[PARALLEL:], strict=True)]
    return {"runs": len(seconds), "wall": wall, "last_run": max(stamps) - t0, "seconds": seconds, "train": train,
            "first": sum(first) / len(first), "later": sum(later) / max(1, len(later))}  # fmt: skip


def anatomy(out: Path, epochs: int) -> dict:
    """One run in this process (imports warm after a first run): set-up, training loop, finish."""
    import torch

    from sigattn.train.config import load_recipe
    from sigattn.train.trainer import Trainer

    torch.set_num_threads(THREADS)
    ov = [f"trainer.epochs={epochs}", "trainer.quiet=true", f"trainer.num_threads={THREADS}"]
    Trainer(load_recipe(TOY, [*ov[1:], "trainer.epochs=1"]), run_dir=out / "warm").fit()  # imports, plots
    t0 = time.perf_counter()
    tr = Trainer(load_recipe(TOY, ov), run_dir=out / "run")
    t1 = time.perf_counter()
    m = tr.fit()
    t2 = time.perf_counter()
    return {"setup": t1 - t0, "train": m["train_seconds"], "finish": t2 - t1 - m["train_seconds"]}


def cold_import() -> float:
    """Seconds a fresh process takes to import the trainer (torch, sigattn.train) and matplotlib."""
    code = (
        "import time; t = time.perf_counter(); import sigattn.train.trainer, matplotlib.pyplot; "
        "print(time.perf_counter() - t)"
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": str(THREADS)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def size_row(epochs: int, r: dict) -> tuple[list[object], list[object]]:
    n, wall, last = r["runs"], r["wall"], r["last_run"]
    ideal = sum(r["train"]) / PARALLEL
    whole = sum(r["seconds"]) / PARALLEL
    in_run = (sum(r["seconds"]) - sum(r["train"])) / PARALLEL
    pool, results = last - whole, wall - last
    speed = [epochs, n, sum(r["train"]) / n, f"{wall:.1f}", f"{ideal:.1f}", f"**{wall / ideal:.2f}x**",
             f"{whole:.1f}", f"{wall / whole:.2f}x"]  # fmt: skip
    split = [epochs, f"{wall - ideal:.1f}", f"{in_run:.1f} ({r['first']:.1f} / {r['later']:.1f})", f"{pool:.1f}",
             f"{results:.1f}"]  # fmt: skip
    return speed, split


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 runs of 10 epochs, one size")
    ap.add_argument("--epochs", type=int, nargs="+", help="run sizes (trainer.epochs; default: 50 150)")
    return add_write_flag(ap)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    attentions, seeds = (["se", "none"], [0, 1]) if a.quick else (["se", "eca", "cbam", "none"], [0, 1])
    sizes = a.epochs or ([10] if a.quick else [50, 150])
    speed, split = [], []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sigattn-bench-sweep-") as tmp:
        for epochs in sizes:
            r = measure_sweep(Path(tmp) / f"sweep_e{epochs}", attentions, seeds, epochs)
            s, p = size_row(epochs, r)
            speed.append(s)
            split.append(p)
        cold = cold_import()
        parts = anatomy(Path(tmp) / "anatomy", sizes[0])
    total = time.perf_counter() - t_all
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    md = (
        "## Sweep machinery (toy runs, parallel 2, threads 1)\n\n"
        f"Machine: {machine()}. Mode: {'--quick' if a.quick else 'full'}. Load average at the end: {load:.1f} "
        "(other processes share the CPU; the ratios are measured side by side within each sweep).\n\n"
        f"{len(attentions) * len(seeds)} runs of `recipes/toy.yaml` (`model.attention` in {attentions} x seeds "
        f"{seeds}), `sigattn sweep` with `parallel: {PARALLEL}, threads: {THREADS}`, per run size "
        "(`trainer.epochs`). Ideal = Σ `train_seconds` (each run's training loop, from metrics.json) / "
        f"{PARALLEL}; Σ run / {PARALLEL} = the whole runs as their workers timed them (index.json `seconds`).\n\n"
        + markdown_table(HEAD_SPEED, speed)
        + f"\n\nWhere the time above the ideal goes (seconds of wall time; a run's share is its seconds / {PARALLEL}):\n\n"
        + markdown_table(HEAD_SPLIT, split)
        + f"\n\nOne run of {sizes[0]} epochs in one process, imports warm: Trainer set-up (data, model) "
        f"{parts['setup']:.2f} s, training loop {parts['train']:.2f} s, finish (test evaluation, curves plot, "
        f"report.md) {parts['finish']:.2f} s. A fresh process imports torch + sigattn.train + matplotlib in "
        f"{cold:.1f} s: a spawned worker pays that once (a forked one, on a CPU-only Linux machine, does not). Whole benchmark: {total:.0f} s.\n"
    )
    publish("sweep", md, a.write)


if __name__ == "__main__":
    main()
