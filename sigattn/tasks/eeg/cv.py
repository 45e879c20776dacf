"""Run every fold (and seed) of an EEG recipe through the sigattn Trainer and summarise mean +- std.

Example (shell)::

    python -m sigattn.tasks.eeg.cv recipes/eeg_motor_imagery/eegmmidb_lr.yaml --seeds 0 1 trainer.epochs=30

Each fold/seed is one ordinary run (``runs/<recipe>/cv/fold<k>_seed<s>/``) with its own report; the summary
(accuracy, balanced accuracy, Cohen's kappa over folds x seeds, on the test part of each fold, checkpoint
selected on the validation split) is printed and written to ``runs/<recipe>/cv/summary.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sigattn.tasks.eeg import protocols


def run_cv(recipe: str | Path, overrides: list[str] | None = None, seeds: list[int] | None = None,
           out_dir: str | Path | None = None) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Train and test every fold of ``params.protocol`` for each seed; returns ``{metric: (mean, std)}``."""
    from sigattn.tasks.eeg.task import load_trials
    from sigattn.train import Trainer, load_recipe

    overrides = list(overrides or [])
    seeds = seeds or [0]
    cfg = load_recipe(recipe, overrides)
    trials = load_trials(cfg.params)
    n_folds = len(protocols.make_folds(cfg.params.protocol, trials.y, subject=trials.subject,
                                       session=trials.session, n_splits=cfg.params.n_splits,
                                       train_fraction=cfg.params.train_fraction))  # fmt: skip
    out = Path(out_dir) if out_dir else Path(cfg.trainer.out_dir) / Path(recipe).stem / "cv"
    results, lines = [], []
    for fold in range(n_folds):
        for seed in seeds:
            c = load_recipe(recipe, [*overrides, f"params.fold={fold}", f"trainer.seed={seed}"])
            m = Trainer(c, run_dir=out / f"fold{fold}_seed{seed}").fit()
            r = {k: float(m[f"test/{k}"]) for k in ("accuracy", "balanced_accuracy", "kappa")}
            results.append(r)
            lines.append(f"| {fold} | {seed} | {100 * r['accuracy']:.1f} | {100 * r['balanced_accuracy']:.1f} | "
                         f"{r['kappa']:.3f} | {m.get('best_epoch', '')} |")  # fmt: skip
    summary = protocols.summarize(results)
    text = (
        f"# Cross-validation of {Path(recipe).name}\n\nprotocol {cfg.params.protocol}, {n_folds} folds, seeds "
        f"{seeds}; overrides {overrides}\n\n| fold | seed | accuracy % | balanced acc. % | kappa | best epoch |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + f"\n\n**{protocols.format_summary(summary)}**\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    print(text)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="cross-validate an EEG recipe")
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    run_cv(a.recipe, a.overrides, a.seeds, a.out)


if __name__ == "__main__":
    main()
