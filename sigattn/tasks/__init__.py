"""Domains: each is a ``Task`` (see ``sigattn.train.task``), registered here by name and imported lazily."""

from __future__ import annotations

import importlib

# name -> "module:Class"; imported on first use so `import sigattn` never pulls domain dependencies.
TASKS: dict[str, str] = {
    "toy": "sigattn.tasks.toy:ToyTask",
    "speaker": "sigattn.tasks.speaker.task:SpeakerTask",
    "eeg": "sigattn.tasks.eeg.task:EEGTask",
    "forecast": "sigattn.tasks.forecast.task:ForecastTask",
}


def get_task(name: str) -> type:
    """The task class registered as ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)
