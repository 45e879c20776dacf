"""Reading raw EEG recordings with MNE (Gramfort et al., "MEG and EEG data analysis with MNE-Python",
Front. Neurosci. 7:267, 2013) into trials ``(n, C, T)``.

Supported files: EDF/EDF+ (``.edf``), BDF (``.bdf``), GDF (``.gdf``), FIF (``.fif``, ``.fif.gz``) and
BrainVision (``.vhdr``). Channel names are cleaned (eegmmidb writes ``"Fc5."``) and matched
case-insensitively to the montage (``standard_1005``). Every error names the file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sigattn.errors import DataError
from sigattn.features import epochs_from_events
from sigattn.features._core import check_finite as features_check_finite
from sigattn.tasks.eeg.preprocess import bandpass, resample

log = logging.getLogger(__name__)

READERS = {
    ".edf": "read_raw_edf",
    ".bdf": "read_raw_bdf",
    ".gdf": "read_raw_gdf",
    ".fif": "read_raw_fif",
    ".gz": "read_raw_fif",
    ".vhdr": "read_raw_brainvision",
}


def _montage_names(montage: str) -> dict[str, str]:
    import mne

    # "standard_1005" is deprecated in MNE >= 1.13 in favour of "colin27_1005" (same positions); accept both.
    name = montage
    if montage == "standard_1005" and "colin27_1005" in mne.channels.get_builtin_montages():
        name = "colin27_1005"
    m = mne.channels.make_standard_montage(name)
    return {n.upper(): n for n in m.ch_names}


def make_montage(montage: str = "standard_1005"):
    """An MNE ``DigMontage`` by name (``standard_1005`` is mapped to its new name on recent MNE)."""
    import mne

    if montage == "standard_1005" and "colin27_1005" in mne.channels.get_builtin_montages():
        montage = "colin27_1005"
    return mne.channels.make_standard_montage(montage)


def clean_channel_names(names: Sequence[str], montage: str = "standard_1005") -> list[str]:
    """Map raw labels to montage names: strip dots/spaces and an ``EEG`` prefix, match case-insensitively.

    Names that match no montage electrode are returned stripped but otherwise unchanged.

    Example:
        >>> clean_channel_names(["Fc5.", "Cz..", "Afz.", "Iz.."])
        ['FC5', 'Cz', 'AFz', 'Iz']
    """
    table = _montage_names(montage)
    out = []
    for n in names:
        s = n.strip().strip(".").strip()
        if s.upper().startswith("EEG ") or s.upper().startswith("EEG-"):
            s = s[4:].strip()
        out.append(table.get(s.upper(), s))
    return out


def read_raw(path: str | Path, *, preload: bool = True):
    """Read one recording with MNE, choosing the reader from the file extension."""
    import mne

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"EEG recording not found: {path}")
    ext = path.suffix.lower()
    if ext not in READERS:
        raise DataError(f"{path}: unsupported EEG file type {ext!r}; supported: {', '.join(sorted(READERS))}")
    reader = getattr(mne.io, READERS[ext])
    try:
        try:
            return reader(path, preload=preload, verbose="error")
        except Exception as e:  # noqa: BLE001 - eegmmidb's S001R01 has non-UTF-8 annotation bytes
            if ext in (".edf", ".bdf") and "encoding" in str(e):
                return reader(path, preload=preload, verbose="error", encoding="latin1")
            raise
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise DataError(f"{path}: MNE could not read the file ({type(e).__name__}: {e})") from e


def load_raw(
    path: str | Path,
    *,
    channels: Sequence[str] | None = None,
    montage: str | None = "standard_1005",
) -> Any:
    """Read a recording, keep EEG channels, clean names, set the montage, check required channels.

    Args:
        path: the recording file.
        channels: electrodes that must be present (after cleaning), in the order to keep; ``None`` keeps all.
        montage: montage name for positions (``None`` to skip); EEG channels absent from it are an error.

    Returns:
        mne.io.Raw: the preloaded recording.
    """
    raw = read_raw(path)
    raw.pick("eeg")
    if not raw.ch_names:
        raise DataError(f"{path}: the recording has no EEG channels")
    if montage is not None:
        new = clean_channel_names(raw.ch_names, montage)
        if len(set(new)) != len(new):
            raise DataError(f"{path}: channel names collide after cleaning: {raw.ch_names}")
        raw.rename_channels(dict(zip(raw.ch_names, new)))
        known = _montage_names(montage)
        unknown = [c for c in raw.ch_names if c.upper() not in known]
        if unknown:
            raise DataError(f"{path}: channels {unknown} are not in montage {montage!r}")
        raw.set_montage(make_montage(montage), verbose="error")
    if channels is not None:
        missing = [c for c in channels if c not in raw.ch_names]
        if missing:
            raise DataError(
                f"{path}: missing channels {missing} (file has {len(raw.ch_names)}: {raw.ch_names})"
            )
        raw.pick(list(channels))
    return raw


def events_from_annotations(raw, event_id: Mapping[str, int], path: str | Path = "") -> np.ndarray:
    """Events ``(n, 3)`` [sample, 0, code] for the annotation descriptions in ``event_id``, in time order.

    A requested description with no occurrence in the file is an error naming the file.
    """
    import mne

    present = set(raw.annotations.description)
    missing = [d for d in event_id if d not in present]
    if missing:
        raise DataError(
            f"{path or raw.filenames[0]}: no events {missing} among the annotations {sorted(present)}"
        )
    events, _ = mne.events_from_annotations(raw, event_id=dict(event_id), verbose="error")
    return events


def check_finite(data: np.ndarray, sfreq: float, path: str | Path, ch_names: Sequence[str]) -> None:
    """Raise naming the file, channel and time of the first NaN/inf sample (the features' one-pass check finds
    it; only a recording that has one is searched for where)."""
    try:
        features_check_finite(data, str(path))
    except ValueError:
        bad = ~np.isfinite(data)
        c, t = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: {int(bad.sum())} non-finite samples (first in channel {ch_names[c]!r} at {t / sfreq:.3f} s)"
        ) from None


def epoch(
    data: np.ndarray, onsets: np.ndarray, sfreq: float, tmin: float, tmax: float, path: str | Path = ""
) -> np.ndarray:
    """Cut ``(n, C, T)`` epochs from ``data (C, N)`` around sample ``onsets`` with
    :func:`sigattn.features.epochs_from_events` (MNE's inclusive convention: ``T = round(tmax * sfreq) -
    round(tmin * sfreq) + 1``); an epoch that does not fit is an error naming the file."""
    if tmax < tmin:
        raise ValueError(f"tmax ({tmax}) must be >= tmin ({tmin})")
    onsets = np.asarray(onsets, dtype=np.int64)
    events = np.column_stack([onsets, np.zeros_like(onsets), np.ones_like(onsets)])
    try:
        return epochs_from_events(data, events, sfreq, tmin, tmax)
    except ValueError as e:
        duration = data.shape[1] / sfreq
        raise DataError(
            f"{path}: an epoch exceeds the recording (0 to {duration:.2f} s): {e}; shorten tmin/tmax"
        ) from None


def load_epochs(
    paths: Sequence[str | Path],
    event_ids: Sequence[Mapping[str, int]] | Mapping[str, int],
    *,
    tmin: float = 0.0,
    tmax: float = 4.0,
    l_freq: float | None = 8.0,
    h_freq: float | None = 32.0,
    sfreq: float | None = None,
    channels: Sequence[str] | None = None,
    montage: str | None = "standard_1005",
    scale: float = 1e6,
) -> dict[str, Any]:
    """Band-pass, resample and epoch several runs of one subject into ``X (n, C, T)`` float32 (microvolts).

    Args:
        paths: recordings (all with the same sampling rate and channels).
        event_ids: ``{annotation: class index}`` for every file, or one mapping per file.
        tmin: epoch start relative to the event onset (s).
        tmax: epoch end relative to the event onset (s), inclusive like MNE.
        l_freq: band-pass low edge (Hz; ``None`` for a low-pass).
        h_freq: band-pass high edge (Hz; ``None`` for a high-pass; both ``None``: no filter).
        sfreq: resample to this rate (Hz), ``None`` to keep the native rate.
        channels: electrodes required in every file (cleaned names); default: those of the first file.
        montage: montage for name cleaning and positions.
        scale: factor from volts (1e6: microvolts).

    Returns:
        ``{"X", "y", "run", "onset" (s), "ch_names", "sfreq", "files"}``; trials in recording order.
    """
    if not paths:
        raise ValueError("load_epochs: no files given")
    if isinstance(event_ids, Mapping):
        event_ids = [event_ids] * len(paths)
    if len(event_ids) != len(paths):
        raise ValueError(f"load_epochs: {len(paths)} files but {len(event_ids)} event mappings")
    xs, ys, runs, onsets = [], [], [], []
    native, first = None, None
    ch = list(channels) if channels is not None else None
    for r, (path, eid) in enumerate(zip(paths, event_ids)):
        raw = load_raw(path, channels=ch, montage=montage)
        ch = ch or list(raw.ch_names)
        fs = float(raw.info["sfreq"])
        if native is None:
            native, first = fs, path
        elif fs != native:
            raise DataError(f"{path}: sampling rate {fs} Hz differs from {native} Hz in {first}")
        data = raw.get_data() * scale
        check_finite(data, fs, path, raw.ch_names)
        codes = {k: i + 1 for i, k in enumerate(eid)}
        events = events_from_annotations(raw, codes, path)
        data = bandpass(data, fs, l_freq, h_freq)
        on = events[:, 0].astype(float)
        target = fs
        if sfreq is not None and sfreq != fs:
            from fractions import Fraction

            frac = Fraction(sfreq / fs).limit_denominator(1000)
            data = resample(data, frac.numerator, frac.denominator)
            target = fs * frac.numerator / frac.denominator
            on = on * target / fs
        inv = {i + 1: eid[k] for i, k in enumerate(eid)}
        xs.append(epoch(data, np.round(on).astype(int), target, tmin, tmax, path).astype(np.float32))
        ys.append(np.array([inv[c] for c in events[:, 2]], dtype=np.int64))
        runs.append(np.full(len(events), r, dtype=np.int64))
        onsets.append(on / target)
        log.info("%s: %d trials", path, len(events))
    return {
        "X": np.concatenate(xs),
        "y": np.concatenate(ys),
        "run": np.concatenate(runs),
        "onset": np.concatenate(onsets),
        "ch_names": ch,
        "sfreq": target,
        "files": [str(p) for p in paths],
    }
