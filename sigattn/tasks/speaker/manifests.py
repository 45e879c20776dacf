"""Speaker-verification list files: utterance manifests and trial lists.

Manifests come from a VoxCeleb-style folder (``<speaker>/<session>/<utt>.wav``), a Kaldi ``wav.scp`` +
``utt2spk`` pair or a CSV (``path,speaker[,utt]``); trial lists use the VoxCeleb format (``label path1 path2``,
e.g. ``veri_test2.txt``, Nagrani et al., "VoxCeleb", Interspeech 2017). Every error names the file, and for
list files the line number. Pure Python over paths: no audio is read here (see ``audio``), no features are
computed (see ``data``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sigattn.errors import DataError

__all__ = [
    "AUDIO_EXTENSIONS",
    "Item",
    "all_pair_trials",
    "manifest_from_csv",
    "manifest_from_folder",
    "manifest_from_kaldi",
    "read_trials",
    "write_manifest_csv",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class Item:
    """One utterance: ``path`` (or an in-memory key), ``speaker`` label and an ``utt`` id."""

    path: str
    speaker: str
    utt: str


def _resolve(path: str | Path, base: Path) -> str:
    """``path`` as named in a list file: absolute as it is, relative under ``base``."""
    return str(base / path)  # an absolute right-hand side replaces base


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, stripped text)`` of each non-blank line of a list file (blank lines counted)."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, line.strip()


def manifest_from_folder(
    root: str | Path, speaker_from: str = "dir", extensions=AUDIO_EXTENSIONS
) -> list[Item]:
    """All audio files under ``root``, sorted, with the speaker taken from the first folder level.

    Args:
        root: VoxCeleb-style ``<speaker>/<session>/<utt>.wav`` (or ``<speaker>/<utt>.flac``) tree.
        speaker_from: ``"dir"`` (first folder under ``root``) or ``"filename"`` (text before the first ``-``,
            LibriSpeech ``<speaker>-<chapter>-<utt>.flac`` in a flat folder).

    Example:
        >>> manifest_from_folder("data/voxceleb1/wav")  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"manifest_from_folder: {root} is not a folder")
    if speaker_from not in ("dir", "filename"):
        raise ValueError(f"speaker_from must be 'dir' or 'filename', got {speaker_from!r}")
    items = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in extensions or not p.is_file():
            continue
        rel = p.relative_to(root)
        if speaker_from == "dir":
            if len(rel.parts) < 2:
                raise DataError(
                    f"{p}: expected <speaker>/.../<utt> under {root}, found a file at the top level"
                )
            spk = rel.parts[0]
        else:
            spk = p.stem.split("-")[0]
        items.append(Item(str(p), spk, rel.with_suffix("").as_posix()))
    if not items:
        raise DataError(f"manifest_from_folder: no audio files ({', '.join(extensions)}) under {root}")
    return items


def _read_kv(path: Path, lines: dict[str, int] | None = None) -> dict[str, str]:
    """``{utt: value}`` of a Kaldi list; ``lines`` (if given) receives each id's line number."""
    out: dict[str, str] = {}
    for n, text in _lines(path):
        parts = text.split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected '<utt-id> <value>', got {text!r}")
        if parts[0] in out:
            raise DataError(f"{path}:{n}: duplicate utterance id {parts[0]!r}")
        out[parts[0]] = parts[1]
        if lines is not None:
            lines[parts[0]] = n
    return out


def manifest_from_kaldi(wav_scp: str | Path, utt2spk: str | Path) -> list[Item]:
    """Manifest from a Kaldi data folder's ``wav.scp`` (``utt path``) and ``utt2spk`` (``utt speaker``).

    Piped commands (``... |``) are rejected: sigattn reads files, it never runs commands from data lists.
    """
    wav_scp, utt2spk = Path(wav_scp), Path(utt2spk)
    line_of: dict[str, int] = {}
    wavs, spks = _read_kv(wav_scp, line_of), _read_kv(utt2spk)
    items = []
    for utt, path in wavs.items():
        n = line_of[utt]  # the line in wav.scp, blank lines counted
        if path.endswith("|"):
            raise DataError(
                f"{wav_scp}:{n}: piped commands are not supported ({path!r}); convert to files first"
            )
        if utt not in spks:
            raise DataError(f"{wav_scp}:{n}: utterance {utt!r} has no speaker in {utt2spk}")
        items.append(Item(_resolve(path, wav_scp.parent), spks[utt], utt))
    return items


def manifest_from_csv(path: str | Path) -> list[Item]:
    """Manifest from a CSV with a header ``path,speaker[,utt]``; relative paths are relative to the CSV."""
    path = Path(path)
    items = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "speaker"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}:1: header must contain path,speaker[,utt]; missing {sorted(missing)}")
        for n, row in enumerate(reader, 2):
            if not row["path"] or not row["speaker"]:
                raise DataError(f"{path}:{n}: empty path or speaker in {row}")
            utt = row.get("utt") or Path(row["path"]).stem
            items.append(Item(_resolve(row["path"], path.parent), row["speaker"], utt))
    return items


def write_manifest_csv(items: list[Item], path: str | Path) -> Path:
    """Write ``items`` as a ``path,speaker,utt`` CSV (the format :func:`manifest_from_csv` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "speaker", "utt"])
        for it in items:
            w.writerow([it.path, it.speaker, it.utt])
    return path


def read_trials(
    path: str | Path, root: str | Path | None = None, check_files: bool = True
) -> list[tuple[int, str, str]]:
    """Read a VoxCeleb trial list: one ``label path1 path2`` per line (label 1 = same speaker, 0 = different).

    Args:
        path: the list file. root: folder the relative paths are under (default: the list's folder).
        check_files: verify every named file exists; all missing files are reported with their line numbers.

    Returns:
        ``[(label, abs_path1, abs_path2), ...]``.
    """
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    trials, missing = [], []
    for n, text in _lines(path):
        parts = text.split()
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise DataError(f"{path}:{n}: expected 'label path1 path2' with label 0 or 1, got {text!r}")
        a, b = (_resolve(p, base) for p in parts[1:])
        if check_files:
            missing += [f"line {n}: {p}" for p in (a, b) if not Path(p).is_file()]
        trials.append((int(parts[0]), a, b))
    if missing:
        shown = "; ".join(missing[:10]) + (f"; ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise FileNotFoundError(f"{path}: trial list names missing files: {shown}")
    if not trials:
        raise DataError(f"{path}: trial list is empty")
    return trials


def all_pair_trials(items: list[Item]) -> list[tuple[int, str, str]]:
    """Every unordered pair of distinct utterances as a trial (n(n-1)/2; 4,950 for 100 utterances)."""
    return [
        (int(items[i].speaker == items[j].speaker), items[i].path, items[j].path)
        for i in range(len(items))
        for j in range(i + 1, len(items))
    ]
