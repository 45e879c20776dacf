"""Experiments: a recipe (or several) x axes of override values x seeds (x folds), run as ordinary run folders.

A sweep file is YAML::

    name: toy_attention              # optional; default: the file's stem
    recipe: recipes/toy.yaml         # or a list of recipes: then "recipe" is an axis; an entry may be
                                     # {file: R.yaml, name: short, overrides: {...}} (that recipe's own)
    axes:                            # override key -> the values to try (the cartesian product is run)
      model.attention: [se, eca, none]
      window:                        # or named variants: label -> the overrides that make it
        standard: {params.tmin: 0.5, params.tmax: 2.5}
        recipe: {}
    seeds: [0, 1, 2]                 # repetitions (trainer.seed); default: the recipe's own seed
    folds: all                       # tasks with folds (EEG): all | [0, 2] | null (default: no fold axis)
    overrides: {trainer.epochs: 3}   # fixed for every run (a mapping or a list of "key=value")
    baseline: {model.attention: none}  # the reference cell of the results' paired comparison
    parallel: 2                      # runs at a time on this machine
    threads: 1                       # torch/Numba threads per run (default: CPU cores // parallel)
    devices: null                    # GPUs to deal out to the slots (default: all visible; slot i gets GPU
                                     # i mod n, CUDA_VISIBLE_DEVICES per slot)
    gpus_per_run: 1                  # > 1: each run is a DDP job of that many processes (torchrun)
    executor: local                  # local | submitit (SLURM, or submitit's local/debug executors)
    submitit: {cluster: slurm, timeout_min: 240, slurm_partition: gpu}

or ``sigattn sweep RECIPE.yaml --axis model.attention=se,eca,none --seeds 0 1 2 [KEY=VALUE ...]``.

The sweep folder (``<out_dir>/sweeps/<name>/`` by default) holds ``sweep.yaml`` (what was asked),
``index.json`` (every run: its axis values, status, error, seconds) and ``runs/<id>/`` (each an ordinary run
folder: config.yaml, metrics.json, report.md, checkpoints). A run's ``id`` is derived from its recipe and
overrides, so the same run always lands in the same folder. Rerunning the sweep skips the runs that have
``metrics.json``, resumes the ones that stopped (from their last checkpoint) and retries the failed ones; a
failed run is recorded in the index and the sweep goes on. At the end :func:`sigattn.train.results.write_results`
writes ``results.csv`` and ``results.md``.

Local runs: worker processes, ``parallel`` of them, each running one run at a time with its threads and GPUs
(forked with torch loaded by ``sigattn sweep`` on a CPU-only Linux machine, else spawned). A worker dies with
the sweep (Linux: the parent's death sends it SIGTERM, so the run checkpoints its current step and stops); a
worker that dies itself has its run retried once; a lock file per run keeps two local sweeps from training the
same run at once. Clusters: ``executor: submitit`` submits each run as a job through
submitit (the de-facto scheduler layer of PyTorch research code, also used by Hydra's launcher), with its
``AutoExecutor`` parameters from the ``submitit`` mapping; ``cluster: local`` or ``debug`` run the same
submission path on this machine.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sigattn.train.config import ConfigError, _build, _parse_scalar, load_recipe, read_yaml

__all__ = ["SweepSpec", "Sweep", "load_sweep", "sweep_from_recipe", "parse_axis", "run_one"]

REPEAT_AXES = ("seed", "fold")
EXECUTORS = ("local", "submitit")


@dataclass
class SweepSpec:
    """A sweep file, checked key by key like a recipe (unknown key -> error naming the nearest valid one)."""

    recipe: Any = None
    name: str | None = None
    axes: dict = field(default_factory=dict)
    seeds: list[int] | None = None
    folds: Any = None
    overrides: Any = None
    baseline: dict | None = None
    metrics: list[str] | None = None
    parallel: int = 1
    threads: int | None = None
    devices: list[int] | None = None
    gpus_per_run: int = 1
    executor: str = "local"
    submitit: dict = field(default_factory=dict)
    out: str | None = None


def _overrides_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={_yaml_value(v)}" for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        return list(value)
    raise ConfigError(f"{where}: 'overrides' must be a mapping key: value or a list of 'key=value' strings")


def _yaml_value(v: Any) -> str:
    """``v`` as the text of an override (``key=<text>``) that parses back to ``v``."""
    return yaml.safe_dump(v, default_flow_style=True, width=10**9).strip().removesuffix("\n...").strip()


def parse_axis(text: str) -> tuple[str, list]:
    """``"model.attention=se,eca,none"`` -> ``("model.attention", ["se", "eca", "none"])``; values are YAML
    scalars (``params.pred_len=96,192`` gives ints); ``key=[[1, 2], [3]]`` gives a YAML list as is."""
    if "=" not in text:
        raise ConfigError(f"--axis {text!r} is not of the form key.sub=v1,v2,...")
    key, rest = (s.strip() for s in text.split("=", 1))
    if not key or not rest:
        raise ConfigError(f"--axis {text!r}: empty key or no values")
    if rest.startswith("["):
        values = _parse_scalar(rest, text)
        if not isinstance(values, list):
            raise ConfigError(f"--axis {text!r}: the values are not a YAML list")
    else:
        values = [_parse_scalar(v.strip(), text) for v in rest.split(",")]
    return key, values


@dataclass
class Run:
    """One run of a sweep."""

    id: str
    recipe: str
    overrides: list[str]
    values: dict
    dir: str = ""
    status: str = "pending"
    error: str | None = None
    seconds: float | None = None
    job_id: str | None = None

    def record(self) -> dict:
        return {"id": self.id, "dir": self.dir, "recipe": self.recipe, "overrides": self.overrides,
                "values": self.values, "status": self.status, "error": self.error, "seconds": self.seconds,
                "job_id": self.job_id}  # fmt: skip


def _slug(values: dict) -> str:
    parts = []
    for k, v in values.items():
        if k == "fold" and v is None:
            continue
        short = k.rsplit(".", 1)[-1]
        text = v if isinstance(v, str) else json.dumps(v, separators=(",", ""))
        parts.append(f"{short}={text}")
    slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "-", "_".join(parts)).strip("-")
    return slug[:80] or "run"


def _run_id(recipe: Path, overrides: list[str], values: dict) -> str:
    key = json.dumps([recipe.resolve().as_posix(), overrides], separators=(",", ":"))
    return f"{_slug(values)}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"


class Sweep:
    """A checked sweep: the runs it makes, where they go, and how to run them.

    Args:
        spec: the sweep (a :class:`SweepSpec`).
        source: the file it came from (for error messages and the default name), or ``""``.
        out: the sweep folder (default: ``spec.out`` or ``<out_dir of the first recipe>/sweeps/<name>``).
    """

    def __init__(self, spec: SweepSpec, source: str = "", out: str | os.PathLike | None = None):
        self.spec, self.source = spec, source
        where = source or "sweep"
        entries = spec.recipe if isinstance(spec.recipe, list) else [spec.recipe]
        base = Path(source).parent if source else Path(".")
        self.recipes = [self._entry(e, base, where) for e in entries]
        if not self.recipes:
            raise ConfigError(f"{where}: key 'recipe' must name a recipe file (or a list of them)")
        labels = [label for _, label, _ in self.recipes]
        if len(set(labels)) < len(labels):
            raise ConfigError(f"{where}: two recipes share the name {labels}; give each a 'name'")
        self.variants: dict[str, dict[str, list[str]]] = {}
        for k, v in spec.axes.items():
            if isinstance(v, dict) and v:  # named variants: label -> the overrides that make it
                self.variants[k] = {str(label): _overrides_list(ovs, f"{where}: axis {k!r} value {label!r}")
                                    for label, ovs in v.items()}  # fmt: skip
                continue
            if not isinstance(v, list) or not v:
                raise ConfigError(
                    f"{where}: axis {k!r} must be a non-empty list of values or a mapping of named variants "
                    f"(label: overrides), got {v!r}"
                )
            if k in REPEAT_AXES or k == "recipe" or k == "trainer.seed" or k == "params.fold":
                raise ConfigError(f"{where}: axis {k!r}: give seeds with 'seeds' and folds with 'folds'")
        if spec.executor not in EXECUTORS:
            raise ConfigError(f"{where}: key 'executor' must be one of {EXECUTORS}, got {spec.executor!r}")
        for name in ("parallel", "gpus_per_run"):
            if getattr(spec, name) < 1:
                raise ConfigError(f"{where}: key {name!r} must be >= 1, got {getattr(spec, name)}")
        if spec.threads is not None and spec.threads < 1:
            raise ConfigError(f"{where}: key 'threads' must be >= 1 or null, got {spec.threads}")
        if spec.devices and spec.parallel > len(spec.devices) // spec.gpus_per_run:
            raise ConfigError(
                f"{where}: parallel={spec.parallel} runs of {spec.gpus_per_run} GPU(s) need "
                f"{spec.parallel * spec.gpus_per_run} devices, 'devices' lists {len(spec.devices)}"
            )
        self.fixed = _overrides_list(spec.overrides, where)
        self.name = spec.name or (Path(source).stem if source else f"{self.recipes[0][1]}_sweep")
        first = load_recipe(self.recipes[0][0], self.fixed + self.recipes[0][2])
        default_out = Path(first.trainer.out_dir) / "sweeps" / self.name
        self.dir = Path(out or spec.out or default_out)
        self.axes = (["recipe"] if len(self.recipes) > 1 else []) + list(spec.axes)
        self.runs = self._expand(where)
        if spec.baseline:
            for k, v in spec.baseline.items():
                if k not in self.axes:
                    raise ConfigError(
                        f"{where}: baseline key {k!r} is not an axis (axes: {', '.join(self.axes)})"
                    )
                if not any(r.values.get(k) == v for r in self.runs):
                    raise ConfigError(f"{where}: baseline {k}={v!r} is not one of the axis' values")

    @staticmethod
    def _entry(entry: Any, base: Path, where: str) -> tuple[Path, str, list[str]]:
        """A recipe of the sweep: a file name, or ``{file: ..., name: ..., overrides: ...}`` (overrides for
        that recipe only, e.g. a smaller model of one kind) -> ``(path, name, overrides)``."""
        extra: list[str] = []
        name = None
        if isinstance(entry, dict):
            unknown = set(entry) - {"file", "name", "overrides"}
            if unknown or not isinstance(entry.get("file"), str):
                raise ConfigError(
                    f"{where}: a recipe entry is a file name or a mapping with keys file, name, overrides; got "
                    f"{entry!r}"
                )
            extra = _overrides_list(entry.get("overrides"), where)
            name, entry = entry.get("name"), entry["file"]
        if not isinstance(entry, str) or not entry:
            raise ConfigError(
                f"{where}: key 'recipe' must name a recipe file (or a list of them), got {entry!r}"
            )
        for p in (base / entry, Path(entry)):  # relative to the sweep file, else to the working folder
            if p.is_file():
                return p, str(name or p.stem), extra
        raise ConfigError(f"{where}: recipe file not found: {entry!r}")

    def _expand(self, where: str) -> list[Run]:
        from sigattn.train.folds import fold_count

        spec = self.spec
        runs: list[Run] = []
        choices = [list(self.variants[k]) if k in self.variants else v for k, v in spec.axes.items()]
        combos = list(itertools.product(*choices)) if spec.axes else [()]
        for recipe, label, extra in self.recipes:
            for combo in combos:
                values: dict[str, Any] = {"recipe": label} if len(self.recipes) > 1 else {}
                ovs = [*self.fixed, *extra]
                for k, v in zip(spec.axes, combo, strict=True):
                    values[k] = v
                    ovs += self.variants[k][v] if k in self.variants else [f"{k}={_yaml_value(v)}"]
                cfg = load_recipe(recipe, ovs)  # every run checked before any trains (unknown key, type)
                folds: list[int | None] = [None]
                if spec.folds is not None:
                    n = fold_count(cfg)
                    if n is None:
                        raise ConfigError(f"{where}: 'folds' given but task {cfg.task!r} has no folds")
                    folds = list(range(n)) if spec.folds == "all" else list(spec.folds)
                    bad = [f for f in folds if not isinstance(f, int) or not 0 <= f < n]
                    if bad:
                        raise ConfigError(f"{where}: folds {bad} out of range: {recipe.name} has {n} folds")
                seeds = spec.seeds if spec.seeds is not None else [cfg.trainer.seed]
                for fold in folds:
                    for seed in seeds:
                        run_ovs = [*ovs, f"trainer.seed={seed}"] + (
                            [f"params.fold={fold}"] if fold is not None else []
                        )
                        vals = {**values, "seed": seed, "fold": fold}
                        runs.append(Run(_run_id(recipe, run_ovs, vals), str(recipe), run_ovs, vals))
        seen: dict[str, Run] = {}
        for r in runs:
            if r.id in seen:
                raise ConfigError(
                    f"{where}: two runs with the same settings ({r.values}); an axis repeats a value"
                )
            seen[r.id] = r
            r.dir = f"runs/{r.id}"
        return runs

    # ------------------------------------------------------------------ index
    def index(self) -> dict:
        return {
            "name": self.name,
            "axes": self.axes,
            "repeat_axes": list(REPEAT_AXES),
            "baseline": self.spec.baseline,
            "metrics": self.spec.metrics,
            "runs": [r.record() for r in self.runs],
        }

    def write_index(self) -> None:
        path = self.dir / "index.json"
        tmp = path.with_name(f"index.json.{os.getpid()}.tmp")  # two sweeps on one folder never share it
        tmp.write_text(json.dumps(self.index(), indent=1))
        os.replace(tmp, path)  # atomic: a reader (or a killed sweep) never sees half a file

    def _refresh(self) -> None:
        """Status from the run folders: finished runs (metrics.json) are done; the rest pending (a failed or
        interrupted run is retried, resuming from its last checkpoint)."""
        old = {}
        idx = self.dir / "index.json"
        if idx.is_file():
            with contextlib.suppress(ValueError, OSError):
                old = {r["id"]: r for r in json.loads(idx.read_text()).get("runs", [])}
        for r in self.runs:
            prev = old.get(r.id, {})
            r.seconds, r.job_id = prev.get("seconds"), prev.get("job_id")
            done = _is_finished(self.dir / r.dir)
            r.status, r.error = ("done", None) if done else ("pending", prev.get("error"))

    # -------------------------------------------------------------------- run
    def run(self, *, quiet: bool = False, train: bool = True, start: str | None = None) -> dict[str, int]:
        """Run every unfinished run; write the index after each change and the results at the end.
        ``train=False`` trains nothing: the results of the runs finished so far (the others pending).
        ``start``: how local workers start (see :func:`_start_context`; default ``$SIGATTN_SWEEP_START`` or
        spawn); ``auto`` forks on a CPU-only Linux machine: only from a process that has computed nothing yet.

        Returns the counts of runs per status."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "sweep.yaml").write_text(yaml.safe_dump(_plain(self.spec, self), sort_keys=False))
        self._refresh()
        self.write_index()
        todo = [r for r in self.runs if r.status != "done"]
        say = (lambda m: None) if quiet else (lambda m: print(f"sigattn sweep: {m}", flush=True))
        say(f"{self.name}: {len(self.runs)} runs ({len(self.runs) - len(todo)} already done) -> {self.dir}")
        if todo and train:
            if self.spec.executor == "submitit":
                self._run_submitit(todo, say)
            else:
                self._run_local(todo, say, start)
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        try:
            from sigattn.train.results import write_results
        except ImportError as e:  # a core install: the runs are there, the tables need pandas/matplotlib
            say(
                f"{self.name}: {summary}; no results table ({e.name} is missing: pip install 'sigattn[experiments]', "
                f"then sigattn results {self.dir})"
            )
            return counts
        say(f"{self.name}: {summary}; report {write_results(self.dir)}")
        return counts

    def _job(self, r: Run) -> dict:
        # "started" is decided here, once: the ranks of a multi-task job must not each look for themselves
        return {"recipe": r.recipe, "overrides": r.overrides, "dir": str(self.dir / r.dir), "id": r.id,
                "lock": str(self.dir / "locks" / f"{r.id}.lock"), "nproc": self.spec.gpus_per_run,
                "started": (self.dir / r.dir / "config.yaml").is_file()}  # fmt: skip

    def _finished(self, r: Run, result: dict, done: int, total: int, say) -> None:
        r.status, r.error, r.seconds = result["status"], result.get("error"), result.get("seconds")
        self.write_index()
        tail = f"error: {r.error}" if r.error else f"{r.seconds:.1f} s"
        say(f"[{done}/{total}] {r.status} {r.id} ({tail})")

    def _slots(self) -> list[dict[str, str]]:
        """The environment of each local worker: its threads and, on a GPU machine, its GPU(s). Without
        ``devices`` the visible GPUs are dealt out in turn (slot i gets GPU i mod n), so ``parallel: 4`` on a
        4-GPU workstation is one run per GPU."""
        spec = self.spec
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = spec.threads or max(1, cores // spec.parallel)
        env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
        env["SIGATTN_SWEEP_THREADS"] = str(threads)
        env["SIGATTN_SWEEP_PID"] = str(os.getpid())
        devices = list(spec.devices or [])
        if not devices and os.environ.get("CUDA_VISIBLE_DEVICES", None) != "":
            import torch

            devices = list(range(torch.cuda.device_count()))  # NVML: no CUDA context in this process
        g = spec.gpus_per_run
        if devices and g > len(devices):
            raise ConfigError(
                f"gpus_per_run={g} but only {len(devices)} GPU(s) are visible or listed in 'devices'"
            )
        slots = []
        for i in range(spec.parallel):
            e = dict(env)
            if devices:
                e["CUDA_VISIBLE_DEVICES"] = ",".join(
                    str(devices[(i * g + j) % len(devices)]) for j in range(g)
                )
            slots.append(e)
        return slots

    def _run_local(self, todo: list[Run], say, start: str | None = None) -> None:
        (self.dir / "locks").mkdir(exist_ok=True)
        groups: dict[tuple, int] = {}  # slots with the same environment share one pool
        for env in self._slots():
            key = tuple(sorted(env.items()))
            groups[key] = groups.get(key, 0) + 1
        ctx = _start_context(any("CUDA_VISIBLE_DEVICES" in dict(k) for k in groups), start)

        def pool(key: tuple) -> cf.ProcessPoolExecutor:
            return cf.ProcessPoolExecutor(
                groups[key], mp_context=ctx, initializer=_init_worker, initargs=(dict(key),)
            )

        keys = list(groups)
        pools = [pool(k) for k in keys]
        busy = [0] * len(pools)
        queue, running, done = list(todo), {}, 0
        retried: set[str] = set()
        for r in todo:
            r.status = "pending"
        try:
            while queue or running:
                for i, p in enumerate(pools):
                    while queue and busy[i] < groups[keys[i]]:
                        r = queue.pop(0)
                        r.status = "running"
                        running[p.submit(run_one, self._job(r))] = (i, r)
                        busy[i] += 1
                        self.write_index()
                finished, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    i, r = running.pop(fut)
                    busy[i] -= 1
                    try:
                        result = fut.result()
                    except (
                        cf.process.BrokenProcessPool
                    ) as e:  # a worker died (killed, out of memory, segfault)
                        if pools[i]._broken:  # the pool's other runs fail with it: a fresh pool for the rest
                            pools[i].shutdown(wait=False, cancel_futures=True)
                            pools[i] = pool(keys[i])
                        if (
                            r.id not in retried
                        ):  # which of the pool's runs killed it is unknown: each once more
                            retried.add(r.id)
                            r.status = "pending"
                            queue.insert(0, r)
                            continue
                        result = {"status": "failed", "error": f"worker process died (twice): {e}"}
                    done += 1
                    self._finished(r, result, done, len(todo), say)
        finally:
            for p in pools:
                p.shutdown(wait=True, cancel_futures=True)

    def _run_submitit(self, todo: list[Run], say) -> None:
        try:
            import submitit
        except ImportError as e:
            raise ConfigError(
                "executor: submitit needs the submitit package: pip install 'sigattn[experiments]'"
            ) from e
        params = dict(self.spec.submitit)
        cluster = params.pop("cluster", None)
        folder = self.dir / "submitit" / "%j"
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        params.setdefault("name", f"sigattn-{self.name}")
        if self.spec.gpus_per_run > 1:  # one task per GPU: run_one joins them into one DDP group
            params.setdefault("tasks_per_node", self.spec.gpus_per_run)
            params.setdefault("gpus_per_node", self.spec.gpus_per_run)
        try:
            executor.update_parameters(**params)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{self.source or 'sweep'}: key 'submitit': {e}") from e
        jobs = {}
        for r in todo:
            job = self._job(r) | {"lock": None, "nproc": 1, "submitit": True}
            jobs[r.id] = (executor.submit(run_one, job), r)
            r.status, r.job_id = "running", str(jobs[r.id][0].job_id)
        self.write_index()
        say(f"submitted {len(jobs)} job(s) to {executor.cluster} ({folder.parent})")
        done = 0
        while jobs:
            for key, (job, r) in list(jobs.items()):
                if not job.done():
                    continue
                del jobs[key]
                try:
                    result = job.result()  # a multi-task (DDP) job: its first task's, rank 0
                except Exception as e:  # the job failed outside run_one (scheduler, time limit)
                    result = {"status": "failed", "error": " ".join(str(e).split())[-300:]}
                done += 1
                self._finished(r, result, done, len(todo), say)
            if jobs:
                time.sleep(0.5 if executor.cluster in ("local", "debug") else 10)


def _plain(spec: SweepSpec, sweep: Sweep) -> dict:
    d = {k: getattr(spec, k) for k in SweepSpec.__dataclass_fields__}
    d["name"] = sweep.name
    return {k: v for k, v in d.items() if v not in (None, {}, [])}


# ------------------------------------------------------------------ workers
def _die_with_parent() -> None:
    """In a child process (Linux): SIGTERM when the process that started it dies."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _is_finished(run_dir: Path) -> bool:
    """A run is finished when its metrics.json (written by the Trainer as its last result) reads as JSON."""
    try:
        return isinstance(json.loads((run_dir / "metrics.json").read_text()), dict)
    except (OSError, ValueError):
        return False


def _start_context(gpus: bool, method: str | None = None) -> mp.context.BaseContext:
    """How local workers start: ``method`` (else ``$SIGATTN_SWEEP_START``) = ``spawn`` (the default), ``fork``,
    or ``auto`` (what ``sigattn sweep`` uses): fork on Linux without GPUs, else spawn. A forked worker starts with the sweep's
    torch and sigattn already imported (spawn imports them again in every worker: seconds per sweep, most of
    the machinery's overhead on short runs). Fork only from a process that has not computed anything yet: GNU
    OpenMP (torch's CPU threads) is not fork-safe once used, and a forked CUDA state is unusable."""
    method = method or os.environ.get("SIGATTN_SWEEP_START", "spawn")
    if method == "auto":
        fork_ok = sys.platform.startswith("linux") and not gpus and not _cuda_initialized()
        method = "fork" if fork_ok else "spawn"
    if method not in ("spawn", "fork", "forkserver"):
        raise ConfigError(f"sweep start method must be spawn, fork, forkserver or auto, got {method!r}")
    return mp.get_context(method)


def _cuda_initialized() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _init_worker(env: dict[str, str]) -> None:
    """A local worker: threads and devices set before torch loads (spawn), or set on the loaded libraries
    (fork); dies with the sweep (Linux)."""
    os.environ.update(env)
    threads = int(env.get("SIGATTN_SWEEP_THREADS", "0") or 0)
    if threads and "torch" in sys.modules:  # forked from the sweep: torch is loaded already
        sys.modules["torch"].set_num_threads(threads)
    if threads and "numba" in sys.modules:
        numba = sys.modules["numba"]
        with contextlib.suppress(ValueError):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import signal

            _die_with_parent()
            if str(os.getppid()) != env.get("SIGATTN_SWEEP_PID", str(os.getppid())):  # the sweep died already
                os.kill(os.getpid(), signal.SIGTERM)


def _one_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return f"{type(e).__name__}: {text}"[:500]


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (file descriptors included) to ``path`` (appended)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def run_one(job: dict) -> dict:
    """Train (or resume, or skip) one run of a sweep; returns ``{"status", "error", "seconds"}``, never raises
    for a failed run. Runs in a sweep worker, a submitit job, or in process."""
    run_dir = Path(job["dir"])
    if _is_finished(run_dir):
        return {"status": "done", "error": None, "seconds": 0.0}
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = None
    if job.get("lock"):
        import fcntl

        lock = open(job["lock"], "w")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return {"status": "running", "error": "another process is training this run (its lock is held)"}
        if _is_finished(run_dir):  # finished while this process waited for its turn
            lock.close()
            return {"status": "done", "error": None, "seconds": 0.0}
    t0 = time.perf_counter()
    try:
        with _output_to(run_dir / "sweep.log"):
            print(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} sigattn sweep run {job['id']}", flush=True)
            try:
                _train(job, run_dir)
                status, error = "done", None
            except BaseException as e:  # recorded, the sweep goes on (KeyboardInterrupt/SystemExit included)
                traceback.print_exc()
                status, error = "failed", _one_line(e)
                if isinstance(e, KeyboardInterrupt):
                    raise
    finally:
        if lock is not None:
            lock.close()
    return {"status": status, "error": error, "seconds": round(time.perf_counter() - t0, 3)}


def _train(job: dict, run_dir: Path) -> None:
    threads = os.environ.get("SIGATTN_SWEEP_THREADS")
    overrides = list(job["overrides"])
    if threads and not any(o.startswith("trainer.num_threads=") for o in overrides):
        overrides.append(f"trainer.num_threads={threads}")
    started = job.get("started", (run_dir / "config.yaml").is_file())
    if job.get("nproc", 1) > 1 and not job.get("submitit"):
        import subprocess

        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={job['nproc']}",
               "-m", "sigattn.cli", "train"]  # fmt: skip
        cmd += (
            ["--resume", str(run_dir), *overrides]
            if started
            else [job["recipe"], "--run-dir", str(run_dir), *overrides]
        )
        # torchrun dies with this worker (which dies with the sweep): no DDP job trains on unowned
        proc = subprocess.Popen(
            cmd, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None
        )
        try:
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
        if rc:
            raise RuntimeError(f"torchrun exited with {rc}; the ranks' errors are in {run_dir / 'sweep.log'}")
        return
    if job.get("submitit"):
        import signal

        import submitit

        # SLURM warns of a time limit or preemption with USR2 (submitit asks for it): stop as on SIGTERM, so
        # the trainer checkpoints its current step; rerunning the sweep resumes the run from there
        signal.signal(signal.SIGUSR2, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
        if submitit.JobEnvironment().num_tasks > 1:  # one task per GPU: join them into one DDP group
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    from sigattn.train.config import apply_overrides, recipe_from_dict
    from sigattn.train.trainer import Trainer

    if started:  # stopped or failed before: continue from its last checkpoint (or from scratch without one)
        stored = read_yaml(run_dir / "config.yaml")
        cfg = recipe_from_dict(apply_overrides(stored, overrides), name=Path(job["recipe"]).stem,
                               source=str(run_dir / "config.yaml"))  # fmt: skip
        Trainer(cfg, run_dir=run_dir, resume=run_dir).fit()
    else:
        Trainer(load_recipe(job["recipe"], overrides), run_dir=run_dir).fit()


# -------------------------------------------------------------------- loading
def load_sweep(path: str | os.PathLike, *, axes: list[str] | None = None, seeds: list[int] | None = None,
               overrides: list[str] | None = None, **options: Any) -> Sweep:  # fmt: skip
    """A sweep from a sweep file, or from a recipe file plus ``axes`` (``"key=v1,v2"``) and ``seeds``.

    ``options`` set other :class:`SweepSpec` keys (``parallel``, ``out``, ``executor``, ...) over the file's."""
    raw = read_yaml(path)
    if "task" in raw:  # a recipe: the sweep is made of the command line's axes
        raw = {"recipe": str(path), "name": f"{Path(path).stem}_sweep"}
        source = ""
    else:
        source = str(path)
    raw.setdefault("axes", {})
    if raw["axes"] is None:
        raw["axes"] = {}
    for text in axes or []:
        k, v = parse_axis(text)
        raw["axes"][k] = v
    if seeds is not None:
        raw["seeds"] = list(seeds)
    if overrides:
        raw["overrides"] = [*_overrides_list(raw.get("overrides"), str(path)), *overrides]
    raw |= {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in options.items() if v is not None}
    spec = _build(SweepSpec, raw, "", str(path))
    if spec.recipe is None:
        raise ConfigError(f"{path}: missing key 'recipe' (the recipe file, or a list of them)")
    if spec.folds not in (None, "all") and not (
        isinstance(spec.folds, list) and all(isinstance(f, int) for f in spec.folds)
    ):
        raise ConfigError(
            f"{path}: key 'folds' must be all, a list of fold numbers or null, got {spec.folds!r}"
        )
    return Sweep(spec, source=source or "", out=options.get("out"))


def sweep_from_recipe(recipe: str | os.PathLike | list, axes: dict[str, list], **keys: Any) -> Sweep:
    """A sweep in code: ``sweep_from_recipe("recipes/toy.yaml", {"model.attention": ["se", "none"]},
    seeds=[0, 1], parallel=2, out="runs/sweeps/x")``."""
    keys = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in keys.items()}
    recipe = (
        [str(r) if isinstance(r, os.PathLike) else r for r in recipe]
        if isinstance(recipe, list)
        else str(recipe)
    )
    spec = _build(SweepSpec, {"recipe": recipe, "axes": axes, **keys}, "", "sweep")
    return Sweep(spec, out=keys.get("out"))
