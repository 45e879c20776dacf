"""Synthetic motor-imagery EEG with known ground truth (numpy only).

The generator imitates the physiology that motor-imagery decoders exploit (Pfurtscheller & Lopes da Silva,
"Event-related EEG/MEG synchronization and desynchronization", Clin. Neurophysiol. 110, 1999): imagining a
left-hand movement desynchronises (weakens) the mu (8-13 Hz) and beta (18-26 Hz) rhythms over the right
motor cortex (C4), and a right-hand movement over the left motor cortex (C3); feet imagery acts near Cz.

Each trial is the sum of

* 1/f ("pink") background noise, spatially smoothed so that neighbouring electrodes correlate;
* a posterior alpha rhythm (~10 Hz, occipital/parietal), class independent;
* mu and beta sources at the motor cortex, projected through a smooth Gaussian spatial pattern centred on
  C3 / C4 (/ Cz); the source of the hemisphere contralateral to the imagined hand loses ``erd`` of its
  amplitude during the trial;

and each subject multiplies every electrode by its own gain (log-normal) and mixes neighbouring electrodes
with a subject-specific smooth matrix, so that per-subject (Euclidean) alignment matters across subjects.
Electrode positions are an idealised 10-10 layout on the unit sphere (no MNE needed); names follow
``standard_1005`` so MNE's montage can be used for plotting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# BCI Competition IV-2a / BNCI2014_001 (22 electrodes) and PhysioNet eegmmidb (64 electrodes, cleaned names).
BNCI2014001_CHANNELS: tuple[str, ...] = (
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2",
    "C4", "C6", "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz",
)  # fmt: skip
EEGMMIDB_CHANNELS: tuple[str, ...] = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP5", "CP3",
    "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3",
    "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8", "T9", "T10", "TP7", "TP8", "P7", "P5", "P3",
    "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
)  # fmt: skip
CLASS_NAMES: tuple[str, ...] = ("left_hand", "right_hand", "feet")

# Row of the 10-10 system -> polar angle (degrees from Cz) on the midline; positive = anterior.
_ROWS = {"FP": 72.0, "AF": 54.0, "F": 36.0, "FC": 18.0, "FT": 18.0, "C": 0.0, "T": 0.0, "CP": -18.0,
         "TP": -18.0, "P": -36.0, "PO": -54.0, "O": -72.0, "I": -90.0}  # fmt: skip


def electrode_positions(ch_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Idealised 10-10 positions on the unit sphere (x right, y anterior, z up), shape ``(C, 3)``.

    Midline electrodes sit every 22.5 degrees from Cz; the outer ring (Fp, 7/8 and O electrodes) is the
    equator; electrodes in between are spaced evenly along their row. Accurate to a few degrees,
    enough for smooth synthetic spatial patterns.

    Example:
        >>> electrode_positions(["C3", "C4"]).round(2)[:, 0]
        array([-0.71,  0.71])
    """
    out = np.zeros((len(ch_names), 3))
    for i, name in enumerate(ch_names):
        up = name.upper()
        row = up.rstrip("0123456789Z")
        suffix = up[len(row) :]
        if row not in _ROWS or suffix == "":
            raise ValueError(f"electrode_positions: cannot place channel {name!r} (not a 10-10 name)")
        lat = _ROWS[row]
        if suffix == "Z":
            theta, phi = abs(lat), (90.0 if lat >= 0 else -90.0)
        else:
            num = int(suffix)
            side = -1.0 if num % 2 else 1.0  # odd = left
            step = (num + 1) // 2  # 1,2 -> 1; 3,4 -> 2; ...
            if row in ("FP", "O"):
                theta, phi_from_front = 72.0, 18.0 if row == "FP" else 162.0
                phi = 90.0 - side * phi_from_front
            elif row == "T" and num in (9, 10):
                theta, phi = 90.0, 90.0 - side * 90.0
            else:
                # outer-ring point of this row (electrode 7/8) at azimuth 90 - lat (degrees from the front)
                az = 90.0 - lat
                ring = np.array([72.0 * np.sin(np.radians(az)), 72.0 * np.cos(np.radians(az))])
                mid = np.array([0.0, lat])
                frac = min(step / 4.0, 1.0)
                if row in ("AF", "PO"):  # only 3/4 and 7/8 exist: 3 halfway, 7 on the ring
                    frac = 0.5 if step == 2 else 1.0
                p = mid + frac * (ring - mid)
                p[0] *= side
                theta = float(np.hypot(*p))
                phi = float(np.degrees(np.arctan2(p[1], p[0])))
        t, f = np.radians(theta * 1.25), np.radians(phi)  # 10% ring on the equator (EEGLAB convention)
        out[i] = (np.sin(t) * np.cos(f), np.sin(t) * np.sin(f), np.cos(t))
    return out


@dataclass
class MotorImageryData:
    """Synthetic trials and their ground truth.

    Attributes:
        X: ``(n, C, T)`` float32 trials in microvolts.
        y: ``(n,)`` int64 class index into ``class_names``.
        subject: ``(n,)`` int64 subject id (0-based); ``trial``: order of the trial within its subject.
        ch_names, sfreq, class_names: metadata; ``informative``: the electrodes carrying the class signal.
        positions: ``(C, 3)`` idealised electrode positions used by the generator.
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    trial: np.ndarray
    ch_names: tuple[str, ...]
    sfreq: float
    class_names: tuple[str, ...]
    informative: tuple[str, ...]
    positions: np.ndarray = field(repr=False)


def _pink_noise(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    spec = rng.standard_normal(shape + (n // 2 + 1,)) + 1j * rng.standard_normal(shape + (n // 2 + 1,))
    f = np.arange(n // 2 + 1, dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n=n, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _band_noise(rng: np.random.Generator, shape: tuple[int, ...], n: int, sfreq: float, lo: float, hi: float):
    """Unit-variance noise limited to ``[lo, hi]`` Hz (a narrow-band rhythm with random phase/amplitude)."""
    spec = rng.standard_normal(shape + (n // 2 + 1,)) + 1j * rng.standard_normal(shape + (n // 2 + 1,))
    f = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec[..., (f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n=n, axis=-1)
    return x / (x.std(axis=-1, keepdims=True) + 1e-12)


def make_motor_imagery(
    n_subjects: int = 3,
    n_trials_per_class: int = 40,
    n_classes: int = 2,
    montage: str = "bnci2014001",
    sfreq: float = 128.0,
    duration: float = 2.0,
    erd: float = 0.6,
    snr: float = 1.0,
    pattern_width: float = 0.22,
    subject_variability: float = 0.4,
    seed: int | None = 0,
) -> MotorImageryData:
    """Generate motor-imagery trials for several subjects.

    Args:
        n_subjects: number of subjects, each with its own electrode gains and mixing.
        n_trials_per_class: trials per class and subject, interleaved in random order.
        n_classes: 2 (left/right hand) or 3 (+ feet, desynchronisation at Cz).
        montage: ``"bnci2014001"`` (22 electrodes) or ``"eegmmidb"`` (64 electrodes), or a tuple of names.
        sfreq: sampling rate (Hz).
        duration: trial length (s), so ``T = round(sfreq * duration)``.
        erd: fraction of mu/beta amplitude lost over the contralateral motor cortex (0..1).
        snr: motor-rhythm amplitude relative to the background (per informative electrode).
        pattern_width: width (radians on the unit sphere) of the Gaussian spatial pattern of each source.
        subject_variability: spread of the log-normal per-electrode gains and of the smooth mixing.
        seed: random seed (``None`` for fresh randomness).

    Returns:
        A :class:`MotorImageryData`; ``informative`` names C3 and C4 (and Cz with feet).

    Example:
        >>> d = make_motor_imagery(n_subjects=2, n_trials_per_class=5, seed=0)
        >>> d.X.shape, d.y.shape, d.ch_names[7]
        ((20, 22, 256), (20,), 'C3')
    """
    if n_classes not in (2, 3):
        raise ValueError(f"make_motor_imagery: n_classes must be 2 or 3, got {n_classes}")
    if n_subjects < 1 or n_trials_per_class < 1:
        raise ValueError(
            f"make_motor_imagery: need >= 1 subject and trial, got {n_subjects}, {n_trials_per_class}"
        )
    if not 0.0 <= erd <= 1.0:
        raise ValueError(f"make_motor_imagery: erd must be in [0, 1], got {erd}")
    if isinstance(montage, str):
        table = {"bnci2014001": BNCI2014001_CHANNELS, "eegmmidb": EEGMMIDB_CHANNELS}
        if montage not in table:
            raise ValueError(f"make_motor_imagery: unknown montage {montage!r}; valid: {sorted(table)}")
        ch_names = table[montage]
    else:
        ch_names = tuple(montage)
    n_times = int(round(sfreq * duration))
    if n_times < 16:
        raise ValueError(f"make_motor_imagery: sfreq * duration = {n_times} samples is too short")
    rng = np.random.default_rng(seed)
    pos = electrode_positions(ch_names)
    n_ch = len(ch_names)
    idx = {c.upper(): i for i, c in enumerate(ch_names)}
    centres = ["C3", "C4", "CZ"][: n_classes if n_classes == 3 else 2]
    for c in centres:
        if c not in idx:
            raise ValueError(f"make_motor_imagery: montage lacks {c}, needed for the motor sources")
    dist = np.arccos(np.clip(pos @ pos.T, -1.0, 1.0))  # geodesic distances (radians)
    smooth = np.exp(-((dist / 0.25) ** 2))
    smooth /= smooth.sum(axis=1, keepdims=True)
    patterns = np.stack([np.exp(-((dist[idx[c]] / pattern_width) ** 2)) for c in centres])  # (S, C)
    alpha_pat = np.exp(-((np.arccos(np.clip(pos @ np.array([0.0, -0.8, 0.6]), -1, 1)) / 0.6) ** 2))
    # class k desynchronises source: left hand -> right hemisphere (C4), right hand -> C3, feet -> Cz
    erd_source = {0: 1, 1: 0, 2: 2}

    xs, ys, subs, order = [], [], [], []
    for s in range(n_subjects):
        gains = np.exp(subject_variability * rng.standard_normal(n_ch))
        mix = np.eye(n_ch) + subject_variability * (smooth * rng.standard_normal((n_ch, n_ch)))
        labels = np.repeat(np.arange(n_classes), n_trials_per_class)
        rng.shuffle(labels)
        n = len(labels)
        bg = _pink_noise(rng, (n, n_ch), n_times)
        bg = np.einsum("ij,njt->nit", smooth, bg)
        bg /= bg.std(axis=(0, 2), keepdims=True)
        alpha = _band_noise(rng, (n,), n_times, sfreq, 9.0, 11.0)
        src = np.zeros((n, len(centres), n_times))
        for j in range(len(centres)):
            src[:, j] = _band_noise(rng, (n,), n_times, sfreq, 9.0, 13.0)
            src[:, j] += 0.5 * _band_noise(rng, (n,), n_times, sfreq, 18.0, 26.0)
        amp = np.ones((n, len(centres)))
        for k, lab in enumerate(labels):
            amp[k, erd_source[int(lab)]] = 1.0 - erd
        amp *= np.exp(0.15 * rng.standard_normal(amp.shape))  # trial-to-trial variability
        motor = np.einsum("nj,njt,jc->nct", amp, src, patterns) * snr * 2.0
        x = bg + motor + 0.8 * alpha[:, None, :] * alpha_pat[None, :, None]
        x = np.einsum("ij,njt->nit", mix, x) * gains[None, :, None]
        xs.append((10.0 * x).astype(np.float32))  # ~10 uV scale
        ys.append(labels)
        subs.append(np.full(n, s))
        order.append(np.arange(n))
    return MotorImageryData(
        X=np.concatenate(xs),
        y=np.concatenate(ys).astype(np.int64),
        subject=np.concatenate(subs).astype(np.int64),
        trial=np.concatenate(order).astype(np.int64),
        ch_names=tuple(ch_names),
        sfreq=float(sfreq),
        class_names=CLASS_NAMES[:n_classes],
        informative=tuple({"CZ": "Cz"}.get(c, c) for c in centres),
        positions=pos,
    )
