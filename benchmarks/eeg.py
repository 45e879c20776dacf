"""EEG motor imagery: DBConformer vs braindecode EEGNet / ShallowFBCSPNet vs MNE CSP+LDA on real data, and
training throughput of DBConformer vs braindecode's EEGConformer, side by side in one run.

Protocol (identical for every model): the recipe ``recipes/eeg_motor_imagery/eegmmidb_lr.yaml`` (PhysioNet
eegmmidb S001, imagined left vs right fist (runs 4/8/12), 8-32 Hz zero-phase Butterworth, epochs [0, 4] s,
within-subject chronological 5-fold CV (KFold without shuffling), validation = last 20% of each class's
training trials, Euclidean alignment fitted on the training trials of the fold). The networks are that recipe with
``model.name`` switched, trained by the one Trainer (``sigattn train`` of the recipe with the same overrides
gives the same run; checkpoint = best validation epoch); CSP+LDA fits on training + validation trials of the
same task's split.

Usage: ``python benchmarks/eeg.py [--quick] [--write]`` (quick: 80 Hz, fewer epochs, one seed). Prints the
report; ``--write`` also writes it as the "eeg" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import add_write_flag, machine, markdown_table, publish  # noqa: E402
from sigattn.data_paths import shared_data_dir  # noqa: E402
from sigattn.models.registry import create_model  # noqa: E402
from sigattn.tasks.eeg import protocols  # noqa: E402
from sigattn.tasks.eeg.baselines import csp_lda  # noqa: E402
from sigattn.tasks.eeg.datasets import Trials  # noqa: E402
from sigattn.tasks.eeg.task import EEGTask  # noqa: E402
from sigattn.train.config import load_recipe  # noqa: E402
from sigattn.train.trainer import Trainer  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "eeg_motor_imagery" / "eegmmidb_lr.yaml"
NETS = {
    "DBConformer": "dbconformer",
    "EEGNet (braindecode)": "eegnet",
    "ShallowFBCSPNet (braindecode)": "shallow",
}
METRICS = ("accuracy", "balanced_accuracy", "kappa")


def accuracy_table(
    overrides: list[str], epochs: int, seeds: list[int], batch: int, out: Path
) -> tuple[str, dict, Trials]:
    """Every fold of the recipe: CSP+LDA on the task's split, each network trained by the Trainer per seed;
    returns the table, ``{model: {metric: (mean, std)}}`` and the trials."""
    per_model: dict[str, list[dict]] = {name: [] for name in [*NETS, "CSP+LDA (MNE)"]}
    times: dict[str, float] = {name: 0.0 for name in per_model}
    for fold in range(5):
        fold_ov = [*overrides, f"params.fold={fold}"]
        task = EEGTask(load_recipe(RECIPE, fold_ov).params)
        task.build_datasets()
        s, y = task.split, task.trials.y
        t0 = time.perf_counter()
        fit = np.sort(np.concatenate([s["train"], s["val"]]))
        pred = csp_lda(s["X"][fit], y[fit], s["X"][s["test"]])
        times["CSP+LDA (MNE)"] += time.perf_counter() - t0
        per_model["CSP+LDA (MNE)"].append(protocols.classification_metrics(y[s["test"]], pred, 2))
        for name, key in NETS.items():
            for seed in seeds:
                run_ov = [*fold_ov, f"model.name={key}", f"trainer.seed={seed}", f"trainer.epochs={epochs}",
                          f"trainer.batch_size={batch}", "trainer.quiet=true"]  # fmt: skip
                m = Trainer(load_recipe(RECIPE, run_ov), run_dir=out / f"{key}_fold{fold}_seed{seed}").fit()
                times[name] += m["train_seconds"]
                per_model[name].append({k: m[f"test/{k}"] for k in METRICS})
        print(f"fold {fold} done", flush=True)
    rows, summary = [], {}
    for name, res in per_model.items():
        sm = protocols.summarize(res)
        summary[name] = sm
        rows.append([name, f"{100 * sm['accuracy'][0]:.1f} +- {100 * sm['accuracy'][1]:.1f}",
                     f"{100 * sm['balanced_accuracy'][0]:.1f} +- {100 * sm['balanced_accuracy'][1]:.1f}",
                     f"{sm['kappa'][0]:.3f} +- {sm['kappa'][1]:.3f}", f"{times[name]:.1f}"])  # fmt: skip
    table = markdown_table(
        ["model", "accuracy %", "balanced acc. %", "Cohen's kappa", "total fit time (s)"], rows
    )
    return table, summary, task.trials


def throughput(n_chans: int, n_times: int, sfreq: float, batch: int, steps: int) -> str:
    """Training samples/s of DBConformer vs braindecode EEGConformer on the same random batches."""
    x = torch.randn(batch, n_chans, n_times)
    y = torch.randint(0, 2, (batch,))
    rows, rates = [], {}
    for name, key in (("DBConformer", "dbconformer"), ("EEGConformer (braindecode)", "eegconformer")):
        torch.manual_seed(0)
        model = create_model("eeg", key, n_chans=n_chans, n_outputs=2, n_times=n_times, sfreq=sfreq).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, opt=opt):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rate = steps * batch / (time.perf_counter() - t0)
        rates[name] = rate
        rows.append([name, f"{sum(p.numel() for p in model.parameters()):,}", f"{rate:.1f}"])
    ratio = rates["DBConformer"] / rates["EEGConformer (braindecode)"]
    table = markdown_table(["model", "parameters", "training samples/s"], rows)
    return f"{table}\n\nDBConformer trains {ratio:.2f}x as many samples per second as EEGConformer " + (
        f"({n_chans} channels x {n_times} samples, batch {batch}, {steps} Adam steps after one warm-up step)."
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="80 Hz, 40 epochs, one seed, fewer timing steps")
    return add_write_flag(ap)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    root = shared_data_dir()
    if root is None or not (root / "eeg" / "eegmmidb" / "S001R04.edf").exists():
        print("benchmarks/eeg.py: ../shared/data/eeg/eegmmidb is absent; nothing to measure")
        return
    epochs, seeds, steps = (40, [0], 5) if a.quick else (100, [0, 1, 2], 20)
    batch = 8  # ~29 training trials per fold: batch 8 gives 4 Adam steps per epoch
    with tempfile.TemporaryDirectory(prefix="sigattn-bench-eeg-") as tmp:
        # the EDF files are read once; every later run of every fold reads the cached epochs
        overrides = [f"params.data_dir={root / 'eeg' / 'eegmmidb'}", f"params.sfreq={80.0 if a.quick else 'null'}",
                     f"params.cache_dir={Path(tmp) / 'cache'}", f"trainer.out_dir={tmp}"]  # fmt: skip
        t0 = time.perf_counter()
        table, _, trials = accuracy_table(overrides, epochs, seeds, batch, Path(tmp) / "runs")
        elapsed = time.perf_counter() - t0
    tp = throughput(22, 1001, 250.0, 32, steps)
    md = (
        "## EEG motor imagery (eegmmidb S001, left vs right imagined fist)\n\n"
        f"Machine: {machine()}. Mode: {'--quick' if a.quick else 'full'}.\n\n"
        f"Protocol: {len(trials.y)} trials ({trials.X.shape[1]} channels, {trials.sfreq:g} Hz, [0, 4] s, 8-32 Hz),"
        " chronological 5-fold CV (KFold, no shuffling); networks: recipe eegmmidb_lr.yaml with model.name "
        f"switched, trained by sigattn's Trainer, Adam lr 1e-3, batch {batch}, {epochs} epochs, checkpoint = "
        "best accuracy (first epoch reaching it) on the last 20% of each class's training trials; "
        f"seeds {seeds}; CSP (6 components, Ledoit-Wolf) + LDA fits on all training trials. Euclidean alignment "
        "fitted on each fold's training trials. Mean +- std over folds x seeds; ~9 test trials per fold, so one "
        f"trial is ~11 points. Whole comparison: {elapsed:.0f} s.\n\n{table}\n\n"
        "### Training throughput (BNCI2014_001 shapes, random data)\n\n" + tp + "\n"
    )
    publish("eeg", md, a.write)


if __name__ == "__main__":
    main()
