"""Every forecasting recipe (and the demo) passes the engine's typed config check."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from sigattn.train import load_recipe

ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted((ROOT / "recipes" / "forecasting").glob("*.yaml"))
CHANNELS = {"ett": 7, "ili": 7, "exchange": 8, "weather": 21, "electricity": 321, "traffic": 862}


def test_there_is_a_ccm_recipe_per_model_and_dataset():
    names = {p.stem for p in RECIPES}
    for model in ("dlinear", "patchtst", "tsmixer"):
        for ds in (
            "etth1",
            "etth2",
            "ettm1",
            "ettm2",
            "exchange",
            "ili",
            "weather",
            "electricity",
            "traffic",
        ):
            assert f"{model}_ccm_{ds}" in names


@pytest.mark.parametrize(
    "path", RECIPES + [ROOT / "sigattn" / "tasks" / "forecast" / "demo.yaml"], ids=lambda p: p.stem
)
@pytest.mark.filterwarnings("error::FutureWarning")  # written in the current form: no old params.<model key>
def test_recipe_loads(path):
    r = load_recipe(path)
    assert r.task == "forecast"
    m = r.model.kwargs
    assert r.params.seq_len >= 1 and r.model.name in ("dlinear", "patchtst", "tsmixer", "itransformer")
    assert m["channel_strategy"] in ("ci", "cd", "ccm")
    if path.stem != "demo":  # <model>_ccm_<data> and smoke_<model>_ccm_<data>
        assert r.model.name == path.stem.split("_")[-3]
    assert "model" not in yaml.safe_load(path.read_text())["params"]
    ds = path.stem.rsplit("_", 1)[-1]
    key = "ett" if ds.startswith("ett") else ds
    if not path.stem.startswith("smoke") and key in CHANNELS:
        assert m["n_clusters"] == math.ceil(0.3 * CHANNELS[key])
