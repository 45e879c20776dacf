"""Run logging: per-step CSV, TensorBoard events (when installed) and a tqdm progress bar.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> log = CSVLog(Path(tempfile.mkdtemp()) / "steps.csv")
    >>> log.write({"step": 1, "loss": 0.5}); log.write({"step": 2, "loss": 0.4, "acc": 0.9})
    >>> log.path.read_text().splitlines()[0]
    'step,loss,acc'
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["CSVLog", "TensorBoardLog", "progress_enabled", "make_progress"]


class CSVLog:
    """Append rows to a CSV; a row with new columns rewrites the file with the widened header (nothing dropped)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.columns: list[str] = []
        if self.path.exists():  # resuming: keep what is there
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = list(header or [])

    def write(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self.columns]
        if new or not self.path.exists():
            old = self.read() if self.path.exists() else []
            self.columns += new
            self._rewrite([*old, row])
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def read(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate_after(self, key: str, value: float) -> None:
        """Drop rows with ``row[key] > value`` (a resumed run re-logs the steps after its checkpoint)."""
        rows = [r for r in self.read() if r.get(key, "") == "" or float(r[key]) <= value]
        if self.path.exists():
            self._rewrite(rows)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        # atomic: a kill mid-rewrite leaves the previous complete file, never a truncated one
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class TensorBoardLog:
    """Scalars to TensorBoard event files under ``folder``; silently absent when tensorboard is not installed."""

    def __init__(self, folder: str | os.PathLike, purge_step: int | None = None):
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        except Exception:  # tensorboard missing or broken: the CSV log still has everything
            self.writer = None

    @property
    def available(self) -> bool:
        return self.writer is not None

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f"{prefix}{k}", float(v), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def progress_enabled(quiet: bool) -> bool:
    """A bar is drawn unless ``quiet``, ``$CI`` is set true, or stderr is not a terminal."""
    if quiet or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return sys.stderr.isatty()


def make_progress(total: int, desc: str, enabled: bool, initial: int = 0):
    """A tqdm bar counting samples (so it shows samples/s and the ETA); a no-op object when disabled."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="sample",
        unit_scale=True,
        dynamic_ncols=True,
        leave=False,
    )


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *a, **k) -> None:
        pass

    def close(self) -> None:
        pass
