"""Every shipped recipe and demo config is in the current form (a `model:` section, no old spellings) and builds
its model through the domain's registry, with inputs the data would decide filled in."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

from sigattn.models.registry import create_model, model_class
from sigattn.tasks import get_task
from sigattn.train.config import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(ROOT.glob("recipes/**/*.yaml")) + sorted(ROOT.glob("sigattn/tasks/*/demo.yaml"))


def _data_inputs(recipe, names: set[str]) -> dict:
    """Stand-ins for what the data decides: sizes from the recipe's params where it has them."""
    p = recipe.params
    n_mels = getattr(p, "n_mels", 80)
    values = {
        "n_channels": getattr(p, "n_channels", 7),
        "n_classes": getattr(p, "n_classes", 3),
        "seq_len": getattr(p, "seq_len", 96),
        "pred_len": getattr(p, "pred_len", 24),
        "in_channels": n_mels,
        "input_size": n_mels,
        "n_chans": 22,
        "n_outputs": 4,
        "n_times": 500,
        "sfreq": 250.0,
        "chs_info": None,
        "input_window_seconds": None,
    }
    return {k: values[k] for k in names if k in values}


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(ROOT)) for p in RECIPES])
def test_recipe_is_current_and_builds_its_model(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # an old params.<model key> spelling
        recipe = load_recipe(path)
    task_cls = get_task(recipe.task)
    assert recipe.model is not None, f"{path}: task {recipe.task} has no model section"
    domain = task_cls.model_domain
    cls = model_class(domain, recipe.model.name)
    accepted = set(inspect.signature(cls.__init__).parameters)
    inputs = _data_inputs(recipe, set(task_cls.model_inputs) & accepted)
    model = create_model(domain, recipe.model.name, **inputs, **recipe.model.kwargs)
    assert sum(p.numel() for p in model.parameters()) > 0
