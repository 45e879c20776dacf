"""The training engine: ``Trainer`` drives any ``Task`` from a typed recipe (see ``docs/training.md``)."""

from sigattn.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sigattn.train.config import ConfigError, Recipe, load_recipe, recipe_from_dict
from sigattn.train.task import Task
from sigattn.train.trainer import Trainer, unwrap

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Recipe",
    "Task",
    "Trainer",
    "load_checkpoint",
    "load_recipe",
    "recipe_from_dict",
    "save_checkpoint",
    "unwrap",
]
