"""Motor-imagery dataset adapters: PhysioNet eegmmidb (local EDF files), MOABB datasets, synthetic trials.

* eegmmidb: Schalk et al., "BCI2000: a general-purpose brain-computer interface (BCI) system", IEEE TBME
  51(6), 2004; Goldberger et al., PhysioNet, Circulation 101(23), 2000. 109 subjects, 64 channels, 160 Hz.
* MOABB: Chevallier et al., "The largest EEG-based BCI reproducibility study for open science: the MOABB
  benchmark", arXiv 2404.15319, 2024 (e.g. BNCI2014_001 = BCI Competition IV-2a).

Every loader returns :class:`Trials` in recording order (the chronological protocols depend on it) and can
cache the preprocessed epochs as ``.npz`` keyed by the file list, file sizes/mtimes and all settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sigattn.tasks.eeg.io import load_epochs

log = logging.getLogger(__name__)

# eegmmidb run -> (task, meaning of T1, meaning of T2); T0 is rest in every run.
EEGMMIDB_RUNS: dict[int, tuple[str, str, str]] = {}
for _r in (3, 7, 11):
    EEGMMIDB_RUNS[_r] = ("executed_left_right", "left_fist", "right_fist")
for _r in (4, 8, 12):
    EEGMMIDB_RUNS[_r] = ("imagined_left_right", "left_fist", "right_fist")
for _r in (5, 9, 13):
    EEGMMIDB_RUNS[_r] = ("executed_fists_feet", "both_fists", "both_feet")
for _r in (6, 10, 14):
    EEGMMIDB_RUNS[_r] = ("imagined_fists_feet", "both_fists", "both_feet")

# named class sets -> runs (imagery only by default)
EEGMMIDB_TASKS = {
    "left_right": ((4, 8, 12), ("left_fist", "right_fist")),
    "fists_feet": ((6, 10, 14), ("both_fists", "both_feet")),
    "4class": ((4, 6, 8, 10, 12, 14), ("left_fist", "right_fist", "both_fists", "both_feet")),
}


@dataclass
class Trials:
    """Epoched trials of one or more subjects, in recording order within each subject.

    Attributes:
        X: ``(n, C, T)`` float32 (microvolts). y: ``(n,)`` int64 class index into ``class_names``.
        subject, session, run: ``(n,)`` int64 metadata. ch_names, sfreq: montage and rate.
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    session: np.ndarray
    run: np.ndarray
    ch_names: list[str]
    sfreq: float
    class_names: list[str]
    informative: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.X.ndim != 3:
            raise ValueError(f"Trials.X must be (n, C, T), got {self.X.shape}")
        for k in ("y", "subject", "session", "run"):
            if len(getattr(self, k)) != n:
                raise ValueError(f"Trials.{k} has {len(getattr(self, k))} entries, X has {n} trials")
        if self.X.shape[1] != len(self.ch_names):
            raise ValueError(
                f"Trials.X has {self.X.shape[1]} channels but ch_names lists {len(self.ch_names)}"
            )

    def subset(self, idx: np.ndarray) -> Trials:
        """The trials at ``idx`` (order kept)."""
        return Trials(self.X[idx], self.y[idx], self.subject[idx], self.session[idx], self.run[idx],
                      self.ch_names, self.sfreq, self.class_names, self.informative)  # fmt: skip


def _cache_key(files: Sequence[Path], settings: dict) -> str:
    h = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def load_eegmmidb(
    root: str | Path,
    subjects: Sequence[int] = (1,),
    task: str = "left_right",
    *,
    runs: Sequence[int] | None = None,
    tmin: float = 0.0,
    tmax: float = 4.0,
    l_freq: float | None = 8.0,
    h_freq: float | None = 32.0,
    sfreq: float | None = None,
    cache_dir: str | Path | None = None,
) -> Trials:
    """Imagined (or executed) movements of PhysioNet eegmmidb from local ``SxxxRyy.edf`` files.

    Args:
        root: folder holding ``S001R04.edf`` ... (flat) or ``S001/S001R04.edf`` (PhysioNet layout).
        subjects: subject numbers (1-109).
        task: ``"left_right"`` (runs 4/8/12), ``"fists_feet"`` (6/10/14) or ``"4class"`` (both sets).
        runs: overrides the runs of ``task`` (e.g. executed runs 3/7/11).
        tmin: epoch start after the cue (s).
        tmax: epoch end after the cue (s, inclusive).
        l_freq: band-pass low edge (Hz).
        h_freq: band-pass high edge (Hz).
        sfreq: target rate (Hz; ``None`` keeps 160 Hz).
        cache_dir: where to cache the preprocessed epochs (``None``: no cache).

    Returns:
        :class:`Trials` with the 64 electrodes named as in ``standard_1005``.
    """
    if task not in EEGMMIDB_TASKS:
        raise ValueError(f"unknown eegmmidb task {task!r}; valid: {', '.join(EEGMMIDB_TASKS)}")
    task_runs, classes = EEGMMIDB_TASKS[task]
    runs = tuple(runs) if runs is not None else task_runs
    bad = [r for r in runs if r not in EEGMMIDB_RUNS]
    if bad:
        raise ValueError(f"eegmmidb runs {bad} have no motor task; valid runs: 3-14")
    root = Path(root)
    out, settings = [], dict(task=task, runs=runs, tmin=tmin, tmax=tmax, l=l_freq, h=h_freq, sfreq=sfreq, v=1)
    for s in subjects:
        files, eids = [], []
        for r in runs:
            name = f"S{s:03d}R{r:02d}.edf"
            path = root / name if (root / name).exists() else root / f"S{s:03d}" / name
            if not path.exists():
                raise FileNotFoundError(f"eegmmidb file {name} not found under {root}")
            _, t1, t2 = EEGMMIDB_RUNS[r]
            eid = {d: classes.index(c) for d, c in (("T1", t1), ("T2", t2)) if c in classes}
            if not eid:
                raise ValueError(f"{path}: run {r} has none of the classes {classes}")
            files.append(path)
            eids.append(eid)
        cache = None
        if cache_dir is not None:
            cache = Path(cache_dir) / f"eegmmidb_S{s:03d}_{_cache_key(files, settings)}.npz"
        if cache is not None and cache.exists():
            z = np.load(cache, allow_pickle=False)
            d = {k: z[k] for k in ("X", "y", "run")} | {
                "sfreq": float(z["sfreq"]),
                "ch_names": list(z["ch_names"]),
            }
        else:
            d = load_epochs(files, eids, tmin=tmin, tmax=tmax, l_freq=l_freq, h_freq=h_freq, sfreq=sfreq)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npz")
                np.savez(
                    tmp, X=d["X"], y=d["y"], run=d["run"], sfreq=d["sfreq"], ch_names=np.array(d["ch_names"])
                )
                tmp.replace(cache)
        n = len(d["y"])
        run_numbers = np.asarray(runs)[d["run"]]
        out.append(Trials(d["X"], d["y"], np.full(n, s), np.zeros(n, dtype=np.int64), run_numbers,
                          list(d["ch_names"]), d["sfreq"], list(classes)))  # fmt: skip
    return concat_trials(out)


def concat_trials(parts: Sequence[Trials]) -> Trials:
    """Concatenate trials of several subjects (same channels, rate and classes)."""
    if not parts:
        raise ValueError("concat_trials: nothing to concatenate")
    a = parts[0]
    for p in parts[1:]:
        if p.ch_names != a.ch_names or p.sfreq != a.sfreq or p.X.shape[2] != a.X.shape[2]:
            raise ValueError("concat_trials: parts differ in channels, sampling rate or trial length")
    cat = lambda k: np.concatenate([getattr(p, k) for p in parts])  # noqa: E731
    return Trials(cat("X"), cat("y"), cat("subject"), cat("session"), cat("run"), a.ch_names, a.sfreq,
                  a.class_names, a.informative)  # fmt: skip


def load_moabb(
    dataset: str = "BNCI2014_001",
    subjects: Sequence[int] = (1,),
    *,
    n_classes: int = 2,
    fmin: float = 8.0,
    fmax: float = 32.0,
    resample: float | None = None,
    sessions: Sequence[str] | None = None,
) -> Trials:
    """A MOABB motor-imagery dataset through ``moabb.paradigms.MotorImagery`` (data must be downloadable
    or already in MNE's data folder; MOABB downloads on first use).

    ``n_classes=2`` uses ``LeftRightImagery``; the default band is MOABB's 8-32 Hz, as DBConformer used.
    """
    try:
        import moabb.datasets as mds
        from moabb.paradigms import LeftRightImagery, MotorImagery
    except ImportError as e:  # pragma: no cover
        raise ImportError("load_moabb needs moabb: pip install 'sigattn[eeg]'") from e
    if not hasattr(mds, dataset):
        raise ValueError(f"unknown MOABB dataset {dataset!r}")
    ds = getattr(mds, dataset)()
    kw = dict(fmin=fmin, fmax=fmax, resample=resample)
    paradigm = LeftRightImagery(**kw) if n_classes == 2 else MotorImagery(n_classes=n_classes, **kw)
    try:
        X, labels, meta = paradigm.get_data(dataset=ds, subjects=list(subjects))
    except Exception as e:  # noqa: BLE001 - typically a failed download
        raise RuntimeError(f"MOABB could not provide {dataset} subjects {list(subjects)}: {e}") from e
    if sessions is not None:
        keep = meta["session"].isin(list(sessions)).to_numpy()
        X, labels, meta = X[keep], labels[keep], meta[keep]
    classes = sorted(str(v) for v in set(labels))
    sess = {s: i for i, s in enumerate(sorted(meta["session"].unique()))}
    runs = {s: i for i, s in enumerate(sorted(meta["run"].unique()))}
    info = paradigm.get_data(dataset=ds, subjects=[subjects[0]], return_epochs=True)[0].info
    return Trials(
        (X * 1e6).astype(np.float32),
        np.array([classes.index(str(v)) for v in labels], dtype=np.int64),
        meta["subject"].to_numpy().astype(np.int64),
        meta["session"].map(sess).to_numpy().astype(np.int64),
        meta["run"].map(runs).to_numpy().astype(np.int64),
        list(info.ch_names),
        float(info["sfreq"]),
        classes,
    )


def synthetic_trials(**kwargs) -> Trials:
    """:func:`sigattn.synthetic.motor_imagery.make_motor_imagery` as :class:`Trials` (``informative`` set)."""
    from sigattn.synthetic.motor_imagery import make_motor_imagery

    d = make_motor_imagery(**kwargs)
    n = len(d.y)
    return Trials(d.X, d.y, d.subject, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                  list(d.ch_names), d.sfreq, list(d.class_names), list(d.informative))  # fmt: skip
