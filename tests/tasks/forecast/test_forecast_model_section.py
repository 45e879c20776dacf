"""The forecasting recipe's `model:` section: checked against the forecaster's constructor, the channel
strategy switched by one key, old `params.<model key>` spellings carried over with one warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml

from sigattn.models.registry import ModelSpec
from sigattn.tasks.forecast.task import ForecastParams, ForecastTask
from sigattn.train.config import ConfigError, load_recipe, recipe_from_dict, to_dict

ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted((ROOT / "recipes" / "forecasting").glob("*.yaml")) + [
    ROOT / "sigattn" / "tasks" / "forecast" / "demo.yaml"
]
# tiny synthetic data: 2 groups x 2 channels, lookback 24, horizon 8
PARAMS = {"synthetic_groups": 2, "synthetic_channels_per_group": 2, "synthetic_length": 300, "seq_len": 24,
          "pred_len": 8}  # fmt: skip
# small sizes of each model (all constructor arguments)
SIZES = {
    "dlinear": {"kernel_size": 5},
    "patchtst": {"patch_len": 8, "stride": 4, "d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    "tsmixer": {"n_blocks": 1, "d_ff": 16},
    "itransformer": {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _old_form(raw: dict) -> dict:
    """A recipe as written before the model section: the model's keys in params, ``model.name`` as
    ``params.model``."""
    raw = dict(raw)
    model = dict(raw.pop("model"))
    raw["params"] = {**raw["params"], "model": model.pop("name"), **model}
    return raw


def _load(tmp_path: Path, raw: dict, overrides: list[str] = ()):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path, list(overrides))


def _one_step(task: ForecastTask) -> tuple[torch.nn.Module, dict]:
    """One training step on 8 training windows; the model and the loss logs."""
    model = task.build_model().train()
    ds = task.build_datasets()["train"]
    batch = task.collate([ds[i] for i in range(8)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    loss, logs = task.loss(model, batch, epoch=0, step=0)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = [k for k, p in model.named_parameters() if not torch.equal(before[k], p)]
    assert changed, "no parameter moved"
    return model, logs


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_in_its_old_spelling_reads_the_same_with_one_warning(path):
    raw = yaml.safe_load(path.read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = recipe_from_dict(_old_form(raw), name=path.stem, source="old.yaml")
    future = [w for w in caught if issubclass(w.category, FutureWarning)]
    assert len(future) == 1
    message = str(future[0].message)
    assert message.startswith("old.yaml: params.model -> model.name, params.channel_strategy -> ")
    assert "belong in the recipe's 'model' section" in message
    assert old == recipe_from_dict(raw, name=path.stem)


def test_old_style_recipe_builds_the_same_model_as_the_new_form():
    new = {
        "task": "forecast",
        "params": {**PARAMS, "beta": 0.5},
        "model": {"name": "patchtst", "channel_strategy": "ccm", "n_clusters": 2, "revin": False,
                  "dropout": 0.1, "ccm_d_model": 16, **SIZES["patchtst"]},
    }  # fmt: skip
    with pytest.warns(FutureWarning, match=r"params.model -> model.name, params.channel_strategy -> "):
        old = recipe_from_dict(_old_form(new))
    r = recipe_from_dict(new)
    assert old.model == r.model and old.params == r.params and r.params.beta == 0.5
    a = ForecastTask(r.params, seed=3, model=r.model).build_model()
    b = ForecastTask(old.params, seed=3, model=old.model).build_model()
    assert repr(a) == repr(b) and _n_params(a) == _n_params(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.channel_strategy == "ccm" and a.n_clusters == 2 and a.revin is None and a.n_channels == 4


def test_old_and_new_spelling_that_disagree_is_an_error():
    raw = {"task": "forecast", "params": {"channel_strategy": "ci"}, "model": {"channel_strategy": "ccm"}}
    with pytest.raises(ConfigError, match=r"params.channel_strategy='ci' and model.channel_strategy='ccm' "):
        recipe_from_dict(raw)


@pytest.mark.parametrize("model", sorted(SIZES))
@pytest.mark.parametrize("strategy", ["ci", "cd", "ccm"])
def test_channel_strategy_is_one_key_and_each_trains_one_step(tmp_path, model, strategy):
    raw = {"task": "forecast", "params": dict(PARAMS),
           "model": {"name": model, "channel_strategy": "ccm", "n_clusters": 2, **SIZES[model]}}  # fmt: skip
    r = _load(tmp_path, raw, [f"model.channel_strategy={strategy}"])
    assert r.model.kwargs["channel_strategy"] == strategy
    task = ForecastTask(r.params, model=r.model)
    net, logs = _one_step(task)
    assert net.channel_strategy == strategy and type(net).__name__.lower() == model
    assert ("cluster_loss" in logs) == (strategy == "ccm") == (net.clustering is not None)
    assert task.ddp_find_unused_parameters == (strategy == "ccm")


def test_the_strategies_build_different_models():
    counts = {
        s: _n_params(ForecastTask(ForecastParams(**PARAMS), model={"channel_strategy": s}).build_model())
        for s in ("ci", "cd", "ccm")
    }
    # DLinear, L=24, H=8, C=4: CI two Linear(24, 8); CD adds a zero-initialised Linear(4, 4) channel mixing;
    # CCM turns each head into K=3 cluster heads and adds the assigner (not counted here)
    assert counts["ci"] == 2 * (24 * 8 + 8)
    assert counts["cd"] == counts["ci"] + 4 * 4 + 4
    assert counts["ccm"] > 3 * counts["ci"]


@pytest.mark.parametrize(
    "model, message",
    [
        ({"n_cluster": 2}, "unknown key 'model.n_cluster'; did you mean 'model.n_clusters'?"),
        (
            {"chanel_strategy": "ci"},
            "unknown key 'model.chanel_strategy'; did you mean 'model.channel_strategy'?",
        ),
        ({"name": "patchtst", "d_modl": 8}, "unknown key 'model.d_modl'; did you mean 'model.d_model'?"),
        ({"patch_len": 8}, "unknown key 'model.patch_len'"),  # a PatchTST setting on (default) DLinear
        ({"name": "dlinaer"}, "unknown model.name 'dlinaer'; did you mean 'dlinear'?"),
        ({"seq_len": 24}, "model.seq_len is decided by the task's data and params"),
        ({"n_channels": 4}, "model.n_channels is decided by the task's data and params"),
        ({"n_clusters": "three"}, "key 'model.n_clusters' expects int, got str 'three'"),
    ],
)
def test_unknown_model_key_names_the_nearest(model, message):
    with pytest.raises(ConfigError) as e:
        recipe_from_dict({"task": "forecast", "model": model}, source="r.yaml")
    assert str(e.value).startswith("r.yaml: ") and message in str(e.value)
    if "patch_len" in model:
        assert "(valid keys of model dlinear: channel_strategy, n_clusters, kernel_size" in str(e.value)


def test_python_api_checks_the_model_mapping():
    with pytest.raises(ValueError, match=r"did you mean 'model.n_clusters'\?"):
        ForecastTask(ForecastParams(), model={"n_cluster": 2})
    with pytest.raises(
        ValueError, match=r"model.channel_strategy must be one of \('ci', 'cd', 'ccm'\), got 'cc'"
    ):
        ForecastTask(ForecastParams(), model={"channel_strategy": "cc"})
    with pytest.raises(TypeError, match="channel_strategy"):  # model settings are not params any more
        ForecastParams(channel_strategy="ccm")


def test_default_is_dlinear_ci_and_the_models_own_defaults_apply():
    r = recipe_from_dict({"task": "forecast", "params": PARAMS})
    assert r.model == ModelSpec("dlinear", {})
    task = ForecastTask(r.params, model=r.model)
    assert task.model_option("channel_strategy") == "ci" and task.model_option("revin") is False
    net = task.build_model()
    assert net.channel_strategy == "ci" and net.kernel_size == 25 and net.revin is None
    # iTransformer: its constructor's defaults (CD, 2 layers, dropout 0.1), not the old ForecastParams' ones
    it = ForecastTask(ForecastParams(**PARAMS), model={"name": "itransformer", "d_model": 8, "n_heads": 2})
    assert it.model_option("channel_strategy") == "cd" and it.model_option("dropout") == 0.1
    net = it.build_model()
    assert net.channel_strategy == "cd" and len(net.encoder.layers) == 2 and net.drop.p == 0.1
    with pytest.raises(KeyError, match="patch_len"):
        task.model_option("patch_len")


def test_model_section_is_stored_with_the_run():
    raw = {"task": "forecast", "params": PARAMS, "model": {"name": "tsmixer", "channel_strategy": "ccm",
                                                           "n_clusters": 2, "d_ff": 16}}  # fmt: skip
    r = recipe_from_dict(raw, name="f")
    d = to_dict(r)
    assert d["model"] == {"name": "tsmixer", "channel_strategy": "ccm", "n_clusters": 2, "d_ff": 16}
    assert "channel_strategy" not in d["params"] and d["params"]["beta"] == 0.3
    assert recipe_from_dict(yaml.safe_load(yaml.safe_dump(d))) == r
