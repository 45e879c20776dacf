"""The ``Task`` protocol: the only thing the training engine knows about a domain.

A domain (speaker verification, EEG decoding, forecasting, ...) is a class under ``sigattn/tasks/<domain>/``
that satisfies this protocol and is registered by name in ``sigattn.tasks.TASKS``. The engine builds data
loaders (adding ``DistributedSampler`` under DDP), places batches on the device, runs the optimisation, gathers
evaluation outputs from every rank and asks the task for metrics on rank 0.

Recipe layout (YAML, see ``sigattn.train.config``)::

    task: forecast          # key in sigattn.tasks.TASKS
    params: {...}           # the task's own dataclass (Task.Params), checked like every other section
    trainer: {...}          # epochs, batch size, AMP, compile, checkpoints ... (TrainerConfig)
    optim: {...}            # optimiser (OptimConfig)
    sched: {...}            # scheduler (SchedConfig)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import Dataset

Batch = Any  # whatever the task's collate function returns; the engine moves tensors inside it to the device


@runtime_checkable
class Task(Protocol):
    """What a domain provides to the engine.

    Attributes:
        name: registry key (``"speaker"``, ``"eeg"``, ``"forecast"``...).
        Params: dataclass type of the recipe's ``params`` section.
        monitor: default validation metric for best-checkpoint selection, and ``monitor_mode`` ``"min"``/``"max"``.
    """

    name: ClassVar[str]
    Params: ClassVar[type]
    monitor: ClassVar[str]
    monitor_mode: ClassVar[str]

    def __init__(self, params: Any, *, seed: int = 0) -> None: ...

    def build_datasets(self) -> Mapping[str, Dataset]:
        """Datasets by split: ``"train"`` (required), ``"val"`` (model selection), ``"test"`` (final report).

        The validation split is carved from training data, never from the test split.
        """

    def collate(self, items: list[Any]) -> Batch:
        """Turn a list of dataset items into a batch (may pad and return ``lengths``)."""

    def build_model(self) -> nn.Module:
        """A fresh model (the engine moves it to the device, wraps it in DDP/compile)."""

    def loss(
        self, model: nn.Module, batch: Batch, *, epoch: int, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar training loss and a dict of per-step scalars to log (e.g. accuracy)."""

    def predict(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-batch evaluation outputs (first dim = items in the batch); gathered across ranks by the engine."""

    def metrics(self, outputs: dict[str, torch.Tensor], split: str) -> dict[str, float]:
        """Metrics from the concatenated outputs of a whole split (called on rank 0 only)."""

    def plots(
        self, model: nn.Module, outputs: dict[str, torch.Tensor], split: str, out_dir: Path
    ) -> list[Path]:
        """Optional: write PNGs for the run report and return their paths (may return ``[]``)."""


# Optional hooks a task may define (the engine checks with hasattr):
#
#   demo_checks(self, metrics: dict[str, float]) -> dict[str, bool | None]
#       acceptance checks shown in the `sigattn demo` report (e.g. {"EER < 5%": True}). `metrics` is what
#       Trainer.fit() returns: "test/<name>" and "val/<name>" (keys of this task's `metrics`), "train/loss",
#       "best_epoch", "epochs", "steps"; it is called on the same task instance, after the test evaluation.
#       A check whose value is None does not apply to this run (e.g. a synthetic-data target on real data) and
#       is left out of the report.
#   report_notes(self) -> list[str]
#       lines for the run report's header (e.g. which split was chosen and why), after the test evaluation.
#   export_model(self, model) -> nn.Module
#       the module to export (e.g. the embedding network without the loss head); default: the model.
#   example_inputs(self) -> tuple[torch.Tensor, ...]
#       inputs for export/compile checks; `dynamic_axes` (class attribute, dict as torch.onnx expects) names
#       the axes that may vary.
#   ddp_find_unused_parameters (class attribute, bool, default False)
#       set True when some parameters get no gradient in a step (optional branches); DDP then searches for them.
#
# Evaluation outputs: `predict` must return the key "index" (LongTensor of dataset indices). The engine
# gathers outputs from all ranks, then sorts by and de-duplicates on "index" (DistributedSampler pads the
# last batch by repeating items), so `metrics` sees every item of the split exactly once.
