"""Build sigattn manifests and check trial lists for a local copy of VoxCeleb1/2 (see README.md here).

Usage: ``python datasets/voxceleb/prepare.py --root data/voxceleb [--convert] [--jobs 8]``.
Nagrani et al., Interspeech 2017 (VoxCeleb1); Chung et al., Interspeech 2018 (VoxCeleb2).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sigattn.tasks.speaker.data import manifest_from_folder, read_trials, write_manifest_csv

TRIALS = ("veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt")


def convert_m4a(src_root: Path, dst_root: Path, jobs: int) -> int:
    """Convert every ``.m4a`` under ``src_root`` to 16 kHz mono 16-bit WAV under ``dst_root`` (ffmpeg)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg not found: install it or convert vox2/dev/aac to wav yourself")
    files = sorted(src_root.rglob("*.m4a"))

    def one(src: Path) -> None:
        dst = (dst_root / src.relative_to(src_root)).with_suffix(".wav")
        if dst.exists():
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp.wav")
        cmd = [ffmpeg, "-loglevel", "error", "-y", "-i", str(src), "-ac", "1", "-ar", "16000", str(tmp)]
        if subprocess.run(cmd).returncode != 0:
            raise RuntimeError(f"ffmpeg failed on {src}")
        tmp.rename(dst)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, files))
    return len(files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("data/voxceleb"))
    ap.add_argument("--convert", action="store_true", help="convert vox2/dev/aac/*.m4a to vox2/dev/wav first")
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args(argv)
    root = args.root
    if args.convert:
        n = convert_m4a(root / "vox2" / "dev" / "aac", root / "vox2" / "dev" / "wav", args.jobs)
        print(f"converted {n} m4a files")
    for name, folder in (("vox2_dev", root / "vox2" / "dev" / "wav"), ("vox1", root / "vox1" / "wav")):
        if not folder.is_dir():
            print(f"skip {name}: {folder} not found")
            continue
        items = manifest_from_folder(folder)
        path = write_manifest_csv(items, root / "manifests" / f"{name}.csv")
        print(f"{name}: {len({i.speaker for i in items})} speakers, {len(items)} utterances -> {path}")
    for t in TRIALS:
        path = root / "trials" / t
        if path.exists():
            trials = read_trials(path, root / "vox1" / "wav")  # raises with line numbers for missing files
            print(f"{t}: {len(trials)} trials, {sum(x[0] for x in trials)} target, all files present")
        else:
            print(f"{t}: not found in {root / 'trials'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
