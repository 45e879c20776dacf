"""Evaluate and export trained checkpoints (behind ``sigattn eval`` and ``sigattn export``).

Export uses the task's optional hooks: ``export_model(model)`` (default: the model), ``example_inputs()``
(required) and ``dynamic_axes`` (ONNX names -> varying axes; its first keys name the inputs, the rest the
outputs). ONNX goes through the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) and is
checked against onnxruntime when it is installed.

Example:
    >>> # sigattn eval runs/toy/20250101-120000 ; sigattn export runs/toy/.../checkpoints/best.ckpt --format onnx
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sigattn.train import checkpoint as ck
from sigattn.train.config import recipe_from_dict
from sigattn.train.trainer import Trainer, find_resume_checkpoint

__all__ = ["resolve_checkpoint", "load_trained", "evaluate_checkpoint", "export_checkpoint"]


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A ``.ckpt`` file as given, or a run folder's ``checkpoints/best.ckpt`` (else its newest step checkpoint)."""
    p = Path(path)
    if p.is_dir():
        for best in (p / "checkpoints" / "best.ckpt", p / "best.ckpt"):
            if best.is_file():
                return best
        return find_resume_checkpoint(p)
    if not p.exists():
        raise ck.CheckpointError(f"no such run folder or checkpoint: {str(p)!r}")
    return p


def _weights(state: dict) -> dict:
    if "weights" in state:  # best.ckpt: the evaluated (EMA when used) weights
        return state["weights"]
    if state.get("ema"):
        return state["ema"]["shadow"]
    return state["model"]


def load_trained(path: str | os.PathLike, overrides: dict | None = None) -> tuple[Trainer, nn.Module, Path]:
    """A set-up :class:`Trainer` (task, data, device) and its model loaded with the checkpoint's weights."""
    ckpt = resolve_checkpoint(path)
    state = ck.load_checkpoint(ckpt)
    if "config" not in state:
        raise ck.CheckpointError(f"checkpoint {str(ckpt)!r} stores no recipe config")
    cfg = state["config"]
    if overrides:
        cfg = {**cfg, "trainer": {**cfg.get("trainer", {}), **overrides}}
    trainer = Trainer(recipe_from_dict(cfg, source=str(ckpt)))
    trainer._setup()
    model = trainer.eval_model
    weights = _weights(state)
    ck.check_state_fits(
        model,
        weights,
        ckpt,
        "the model built from its stored recipe differs (trained with another sigattn version?)",
    )
    model.load_state_dict(weights)
    model.eval()
    return trainer, model, ckpt


def evaluate_checkpoint(path: str | os.PathLike, splits: list[str] | None = None) -> dict[str, float]:
    """Metrics ``<split>/<name>`` of a run folder or checkpoint on ``splits`` (default: test, else val)."""
    trainer, model, _ = load_trained(path, {"quiet": True})
    if not splits:
        splits = ["test"] if "test" in trainer.datasets else ["val"]
    out: dict[str, float] = {}
    for split in splits:
        if split not in trainer.datasets:
            raise ValueError(
                f"split {split!r} not built by task {trainer.cfg.task!r}; have {sorted(trainer.datasets)}"
            )
        m, _ = trainer.evaluate(split, model)
        out |= {f"{split}/{k}": v for k, v in m.items()}
    return out


def _names(task: Any, n_inputs: int) -> tuple[list[str], list[str], dict | None]:
    axes = getattr(task, "dynamic_axes", None)
    keys = list(axes or {})
    inputs = list(getattr(task, "input_names", None) or keys[:n_inputs])
    inputs += [f"input{i}" for i in range(len(inputs), n_inputs)]
    outputs = list(getattr(task, "output_names", None) or keys[n_inputs:] or ["output"])
    return inputs, outputs, axes


def export_checkpoint(
    path: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None
) -> tuple[Path, float | None]:
    """Export to ``onnx`` or ``torchscript``; returns the file and the max |difference| vs eager (when checked)."""
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"unknown export format {fmt!r}; valid: onnx, torchscript")
    trainer, model, ckpt = load_trained(path, {"quiet": True, "device": "cpu"})
    task = trainer.task
    module = task.export_model(model) if hasattr(task, "export_model") else model
    module = module.cpu().eval()
    if not hasattr(task, "example_inputs"):
        raise ValueError(f"task {trainer.cfg.task!r} defines no example_inputs(); cannot trace it for export")
    inputs = tuple(t.cpu() for t in task.example_inputs())
    suffix = ".onnx" if fmt == "onnx" else ".ts.pt"
    dest = Path(out) if out else ckpt.parent.parent / "export" / f"{ckpt.stem}{suffix}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        ref = module(*inputs)
    ref = ref[0] if isinstance(ref, (tuple, list)) else ref
    diff = None
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(module, inputs)
        traced.save(str(dest))
        with torch.no_grad():
            got = torch.jit.load(str(dest))(*inputs)
        got = got[0] if isinstance(got, (tuple, list)) else got
        diff = float((got - ref).abs().max())
        return dest, diff
    in_names, out_names, axes = _names(task, len(inputs))
    torch.onnx.export(
        module, inputs, str(dest), input_names=in_names, output_names=out_names, dynamic_axes=axes,
        opset_version=17, dynamo=False,
    )  # fmt: skip
    try:
        import onnxruntime as ort
    except ImportError:
        return dest, None
    sess = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    feed = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), inputs)}
    got = torch.from_numpy(sess.run(None, feed)[0])
    diff = float((got - ref).abs().max())
    return dest, diff
