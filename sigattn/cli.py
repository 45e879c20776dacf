"""The ``sigattn`` command: train / eval / export / bench / info / demo.

Examples:
    sigattn train recipes/toy.yaml optim.lr=3e-3 trainer.epochs=2
    sigattn train --resume runs/toy/20250101-120000
    torchrun --nproc_per_node 4 -m sigattn.cli train recipes/speaker_verification/ecapa_c1024_voxceleb2.yaml
    sigattn eval runs/toy/20250101-120000
    sigattn export runs/toy/20250101-120000/checkpoints/best.ckpt --format onnx
    sigattn demo --quick
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_train(a: argparse.Namespace) -> int:
    from sigattn.train import Trainer, load_recipe
    from sigattn.train import checkpoint as ck
    from sigattn.train.config import apply_overrides, read_yaml, recipe_from_dict
    from sigattn.train.trainer import newest_valid_checkpoint

    args = list(a.args)
    recipe_path = args.pop(0) if args and "=" not in args[0] else None
    if recipe_path is not None:
        recipe = load_recipe(recipe_path, args)
    elif a.resume:
        # the recipe stored in the checkpoint the trainer will resume from (it warns about damaged newer ones),
        # or in config.yaml of a run folder that stopped before its first checkpoint (the trainer restarts it)
        ckpt, state, _ = newest_valid_checkpoint(a.resume)
        if state is None:
            stored = Path(a.resume) / "config.yaml"
            recipe = recipe_from_dict(apply_overrides(read_yaml(stored), args), source=str(stored))
        else:
            if "config" not in state:
                raise ck.CheckpointError(
                    f"checkpoint {str(ckpt)!r} stores no recipe config; give the RECIPE file"
                )
            recipe = recipe_from_dict(apply_overrides(state["config"], args), source=str(ckpt))
    else:
        raise SystemExit("sigattn train: give a RECIPE file (or --resume RUN_DIR to continue a run)")
    trainer = Trainer(recipe, run_dir=a.run_dir, resume=a.resume)
    metrics = trainer.fit()
    if trainer.main:
        print(json.dumps(metrics, indent=2))
        print(f"run folder: {trainer.run_dir}")
    return 0


def _cmd_eval(a: argparse.Namespace) -> int:
    from sigattn.train.tools import evaluate_checkpoint

    metrics = evaluate_checkpoint(a.path, a.split)
    text = json.dumps(metrics, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text)
    return 0


def _cmd_folds(a: argparse.Namespace) -> int:
    from sigattn.train.folds import FoldRunsFailed, run_folds

    out = a.out
    if out is None:
        from sigattn.train.config import load_recipe

        out = str(Path(load_recipe(a.recipe, a.overrides).trainer.out_dir) / Path(a.recipe).stem / "folds")
    try:
        run_folds(a.recipe, a.overrides, a.seeds, out)
        failed = None
    except FoldRunsFailed as e:
        failed = e
    results = Path(out) / "results.md"
    print(f"summary: {Path(out) / 'summary.md'}" + (f"; results: {results}" if results.is_file() else ""))
    if failed is not None:
        print(f"sigattn folds: {failed}", file=sys.stderr)
        return 1
    return 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from sigattn.train.sweep import load_sweep

    sweep = load_sweep(
        a.file, axes=a.axis, seeds=a.seeds, overrides=a.overrides, parallel=a.parallel, threads=a.threads,
        executor=a.executor, out=a.out, folds=_folds_arg(a.folds),
    )  # fmt: skip
    if a.dry_run:
        print(f"{sweep.name}: {len(sweep.runs)} runs -> {sweep.dir}")
        for r in sweep.runs:
            print(f"  {r.id}  {' '.join(r.overrides)}")
        return 0
    counts = sweep.run(quiet=a.quiet, start="auto")  # this process has only read recipes: fork is safe
    return 1 if counts.get("failed") else 0


def _folds_arg(values: list[str] | None):
    if not values:
        return None
    if values == ["all"]:
        return "all"
    try:
        return [int(v) for v in values]
    except ValueError:
        raise SystemExit(
            f"sigattn sweep: --folds takes 'all' or fold numbers, got {' '.join(values)}"
        ) from None


def _cmd_results(a: argparse.Namespace) -> int:
    from sigattn.train.config import ConfigError
    from sigattn.train.results import write_results

    baseline = None
    if a.baseline:
        baseline = {}
        for text in a.baseline:
            key, sep, value = text.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--baseline {text!r} is not of the form key=value")
            baseline[key.strip()] = value.strip()  # matched against the axis values as text (96 = "96")
    path = write_results(a.sweep_dir, baseline=baseline, metrics=a.metrics)
    print(path.read_text())
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from sigattn.train.tools import export_checkpoint

    dest, diff = export_checkpoint(a.checkpoint, a.format, a.output)
    check = "not checked (onnxruntime missing)" if diff is None else f"max |exported - eager| = {diff:.3g}"
    print(f"wrote {dest} ({check})")
    return 0


def _repo_root() -> Path | None:
    for d in (Path.cwd(), *Path.cwd().parents):
        if (d / "benchmarks").is_dir():
            return d
    return None


def _cmd_bench(a: argparse.Namespace) -> int:
    root = _repo_root()
    if root is None:
        raise SystemExit("sigattn bench: no benchmarks/ folder here or above the current directory")
    scripts = sorted(p for p in (root / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    names = [p.stem for p in scripts]
    if a.only:
        unknown = [n for n in a.only if n not in names]
        if unknown:
            raise SystemExit(
                f"sigattn bench: unknown benchmark(s) {unknown}; available: {', '.join(names) or 'none'}"
            )
        scripts = [p for p in scripts if p.stem in a.only]
    if a.list or not scripts:
        print("\n".join(names) if names else "no benchmark scripts in benchmarks/")
        return 0
    failed = []
    env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    for p in scripts:
        cmd = [sys.executable, str(p)] + (["--quick"] if a.quick else []) + (["--write"] if a.write else [])
        print(f"== bench: {p.stem}: {' '.join(cmd)}", flush=True)
        if subprocess.run(cmd, cwd=root, env=env).returncode:
            failed.append(p.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def info_lines() -> list[str]:
    """What ``sigattn info`` prints: versions, devices, Numba threading, cache and data folders."""
    import importlib.metadata as md

    import sigattn
    from sigattn.data_paths import shared_data_dir

    lines = [f"sigattn {sigattn.__version__}", f"python {platform.python_version()} ({sys.executable})"]
    lines.append(f"platform {platform.platform()}, {os.cpu_count()} logical CPUs")
    for pkg in ("torch", "numpy", "scipy", "numba", "torchaudio", "speechbrain", "mne", "moabb", "braindecode",
                "pandas", "matplotlib", "tensorboard", "onnx", "onnxruntime"):  # fmt: skip
        try:
            lines.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            lines.append(f"{pkg} not installed")
    import torch

    lines.append(f"torch threads {torch.get_num_threads()}, CUDA build {torch.version.cuda or 'none'}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append(f"cuda:{i} {torch.cuda.get_device_name(i)} (bf16: {torch.cuda.is_bf16_supported()})")
    else:
        lines.append("CUDA not available (training runs on CPU)")
    mps = getattr(torch.backends, "mps", None)
    lines.append(f"MPS available: {bool(mps and mps.is_available())}")
    try:
        import numba
        import numpy as np

        @numba.njit(parallel=True, cache=False)
        def _probe(x):  # one parallel kernel, so Numba picks its threading layer
            s = 0.0
            for i in numba.prange(x.shape[0]):
                s += x[i]
            return s

        _probe(np.ones(4))
        layer = numba.threading_layer()
        lines.append(
            f"numba threading layer {layer} (configured: {numba.config.THREADING_LAYER}), "
            f"{numba.config.NUMBA_NUM_THREADS} threads"
        )
    except Exception as e:  # report, never crash `info`
        lines.append(f"numba threading layer unavailable: {type(e).__name__}: {e}")
    lines.append(
        f"NUMBA_CACHE_DIR {os.environ.get('NUMBA_CACHE_DIR') or '(unset: next to the sources / __pycache__)'}"
    )
    data = shared_data_dir()
    lines.append(f"data dir {data if data else '(none: set $SIGATTN_DATA_DIR or create ../shared/data)'}")
    return lines


def _cmd_info(a: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from sigattn.train.demo import available_demos, run_demo
    from sigattn.train.report import acceptance_checks

    if a.list:
        print("\n".join(available_demos()))
        return 0
    report, results = run_demo(a.out, a.only, a.quick)
    print(f"demo report: {report}")
    errors = [r["domain"] for r in results if r["error"]]
    failed_checks = [r["domain"] for r in results if not all(acceptance_checks(r["checks"]).values())]
    if errors:
        print(f"demo failed for: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 1 if (a.strict and failed_checks) else 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="sigattn", description=__doc__, formatter_class=fmt)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "train", formatter_class=fmt, help="train a recipe (YAML) with optional key.sub=value overrides",
        description="Train RECIPE into runs/<recipe>/<time>/ (config.yaml, steps.csv, epochs.csv, metrics.json, "
        "checkpoints/, plots/, tb/, report.md).\n\nOverrides use YAML scalars: optim.lr=3e-4 "
        "trainer.clip_grad_norm=null optim.betas=[0.9,0.98].\nMany GPUs: torchrun --nproc_per_node N -m "
        "sigattn.cli train RECIPE (trainer.batch_size is the global batch).",
    )  # fmt: skip
    t.add_argument("args", nargs="*", metavar="RECIPE [KEY=VALUE ...]", help="recipe file then overrides")
    t.add_argument(
        "--resume", metavar="RUN_DIR|CKPT", help="continue exactly from a checkpoint or a run's newest"
    )
    t.add_argument("--run-dir", help="write here instead of <out_dir>/<recipe>/<time>/")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="evaluate a run folder (its best checkpoint) or a checkpoint file",
                       description="Rebuild the task from the checkpoint's stored recipe and print split metrics as JSON.")  # fmt: skip
    e.add_argument("path", metavar="RUN_DIR|CHECKPOINT")
    e.add_argument("--split", nargs="+", help="splits to evaluate (default: test, else val)")
    e.add_argument("--json", metavar="FILE", help="also write the metrics to FILE")
    e.set_defaults(func=_cmd_eval)

    f = sub.add_parser(
        "folds", formatter_class=fmt,
        help="every fold (x seeds) of a recipe; mean +- std (= sigattn sweep RECIPE --folds all)",
        description="An alias of 'sigattn sweep RECIPE --folds all --seeds ... --out <out_dir>/<recipe>/folds': "
        "runs RECIPE once per fold of its task's protocol (params.fold = 0 .. n-1) and seed, each an ordinary run "
        "folder under <out>/runs/<id>/ (finished ones are skipped on a rerun, interrupted ones resumed, failed "
        "ones retried), then writes summary.md (test metrics per run and mean +- std) next to the sweep's "
        "results.md, and prints both paths.\n\nExample: sigattn folds "
        "recipes/eeg_motor_imagery/eegmmidb_lr.yaml --seeds 0 1 trainer.epochs=30",
    )  # fmt: skip
    f.add_argument("recipe", metavar="RECIPE")
    f.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, as for train")
    f.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds per fold (default: 0)")
    f.add_argument("--out", help="folder of the runs and summary.md (default: <out_dir>/<recipe>/folds)")
    f.set_defaults(func=_cmd_folds)

    w = sub.add_parser(
        "sweep", formatter_class=fmt, help="run an experiment: recipe(s) x axes x seeds (x folds), then results",
        description="Run every combination of a sweep file's axes (or of --axis on a RECIPE) and seeds, each an "
        "ordinary run folder under <out_dir>/sweeps/<name>/runs/, N at a time; rerunning skips finished runs and "
        "resumes or retries the others. Ends with results.csv and results.md (mean +- std per cell, paired "
        "differences against the baseline).\n\nExamples:\n  sigattn sweep sweeps/forecast_long_term.yaml\n  "
        "sigattn sweep recipes/toy.yaml --axis model.attention=se,eca,none --seeds 0 1 2 --parallel 2 "
        "trainer.epochs=3",
    )  # fmt: skip
    w.add_argument("file", metavar="SWEEP.yaml|RECIPE.yaml")
    w.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="fixed overrides for every run")
    w.add_argument(
        "--axis", action="append", metavar="KEY=V1,V2", help="an axis (repeatable); adds to the file's"
    )
    w.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the file's, else the recipe's seed)")
    w.add_argument(
        "--folds", nargs="+", metavar="all|K", help="fold axis for tasks with folds: all, or fold numbers"
    )
    w.add_argument("--parallel", type=int, help="runs at a time (default: the file's, else 1)")
    w.add_argument("--threads", type=int, help="threads per run (default: CPU cores // parallel)")
    w.add_argument("--executor", choices=["local", "submitit"], help="where runs go (default: local)")
    w.add_argument("--out", help="sweep folder (default: <out_dir>/sweeps/<name>)")
    w.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    w.add_argument("--quiet", action="store_true", help="no per-run lines")
    w.set_defaults(func=_cmd_sweep)

    r = sub.add_parser(
        "results",
        help="tables and plots of a sweep folder: mean +- std per cell, paired tests vs a baseline",
        description="Gather every run of SWEEP_DIR into results.csv (one row per run) and results.md + plots/.",
    )
    r.add_argument("sweep_dir", metavar="SWEEP_DIR")
    r.add_argument(
        "--baseline", nargs="+", metavar="KEY=VALUE", help="the reference cell (default: the sweep's)"
    )
    r.add_argument("--metrics", nargs="+", help="metrics to report first (default: the sweep's, else test/*)")
    r.set_defaults(func=_cmd_results)

    x = sub.add_parser("export", help="export a checkpoint's model to ONNX or TorchScript",
                       description="Uses the task's export_model / example_inputs / dynamic_axes; ONNX is checked "
                       "against onnxruntime, TorchScript against eager.")  # fmt: skip
    x.add_argument("checkpoint", metavar="CHECKPOINT|RUN_DIR")
    x.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    x.add_argument("-o", "--output", help="output file (default: <run>/export/<ckpt>.onnx|.ts.pt)")
    x.set_defaults(func=_cmd_export)

    b = sub.add_parser("bench", help="run the benchmark scripts benchmarks/*.py of this repository",
                       description="Runs each benchmarks/<name>.py with this Python; they print their reports, "
                       "and with --write also write them into docs/benchmarks.md.")  # fmt: skip
    b.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (file stems)")
    b.add_argument("--quick", action="store_true", help="pass --quick to each script (smaller sizes)")
    b.add_argument(
        "--write",
        action="store_true",
        help="pass --write to each script: write its section of docs/benchmarks.md (default: print only)",
    )
    b.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    b.set_defaults(func=_cmd_bench)

    i = sub.add_parser(
        "info", help="versions, CUDA, Numba threading layer, cache and data folders",
        description="Print sigattn/Python/package versions, CUDA devices (and bf16 support), MPS, the Numba "
        "threading layer actually selected, NUMBA_CACHE_DIR and the shared data folder ($SIGATTN_DATA_DIR or "
        "../shared/data). Paste it into bug reports.",
    )  # fmt: skip
    i.set_defaults(func=_cmd_info)

    d = sub.add_parser("demo", help="train one small model per domain on synthetic data; write runs/demo/report.md",
                       description="Runs each domain's sigattn/tasks/<domain>/demo.yaml (speaker, eeg, forecast; the toy "
                       "task when none exists) and writes a report with metrics, checks and plots.")  # fmt: skip
    d.add_argument("--only", nargs="+", metavar="DOMAIN", help="speaker, eeg, forecast or toy")
    d.add_argument("--quick", action="store_true", help="one epoch per domain (checks may fail)")
    d.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    d.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any acceptance check fails (diagnostics do not count)",
    )
    d.add_argument("--list", action="store_true", help="list the available demos and exit")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sigattn`` console script."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command in ("train", "sweep") and not any(e.startswith("-") for e in extra):
        # overrides after an option (`train R --run-dir X a.b=1`): argparse fills the positionals before it
        if args.command == "train":
            args.args = [*args.args, *extra]
        else:
            args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from sigattn.errors import UserError
    from sigattn.train.distributed import RankStopped
    from sigattn.train.trainer import TrainingInterrupted

    _console_logging()
    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as e:
        print(f"sigattn {args.command}: {e}", file=sys.stderr)
        return 143  # 128 + SIGTERM, what schedulers expect from a terminated job
    except RankStopped as e:  # the failing rank printed its own error; the survivors say so in one line
        print(f"sigattn {args.command}: {e}", file=sys.stderr)
        return 1
    except (UserError, FileNotFoundError) as e:  # ConfigError, CheckpointError, DataError
        print(f"sigattn {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2


def _one_line(e: BaseException) -> str:
    """The message of a user error as one line. An error raised in a DataLoader worker arrives re-raised with
    the worker's traceback inside its message; its last line is the original message."""
    text = str(e).strip()
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        last = text.splitlines()[-1].strip()
        return last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith(type(e).__name__) else last
    # a message that embeds another library's multi-line text (pandas, MNE): one line, nothing dropped
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _console_logging() -> None:
    """sigattn's own INFO lines (the chosen data split, how many trials a file held) on stderr, on the first
    rank only; other libraries' logging is left as it is, and so is a program's own logging configuration."""
    logger = logging.getLogger("sigattn")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sigattn: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
