"""The recipe's `model:` section: checked against the model constructor, attention chosen by one key,
old `params.<key>` spellings carried over with a warning, stored and restored with the run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from sigattn.layers import CHANNEL_ATTENTION, register_channel_attention
from sigattn.models.registry import MODELS, ModelSpec, model_spec, register_model
from sigattn.tasks.toy import ToyParams, ToyTask
from sigattn.train.config import ConfigError, load_recipe, recipe_from_dict, to_dict

from .helpers import toy_raw


def _raw(**model):
    return {"task": "toy", "params": {"n_channels": 4, "n_classes": 2}, "model": model}


@pytest.mark.parametrize(
    "model, message",
    [
        ({"hiden": 4}, "unknown key 'model.hiden'; did you mean 'model.hidden'?"),
        ({"hidden": "wide"}, "key 'model.hidden' expects int, got str 'wide'"),
        ({"dropout": float("inf")}, "key 'model.dropout' must be a finite number"),
        ({"n_channels": 5}, "model.n_channels is decided by the task's data"),
        (
            {"name": "toynett"},
            "unknown model.name 'toynett'; did you mean 'toynet'? (valid toy models: toynet)",
        ),
    ],
)
def test_model_section_is_checked_against_the_constructor(model, message):
    with pytest.raises(ConfigError) as e:
        recipe_from_dict(_raw(**model), source="r.yaml")
    assert str(e.value).startswith("r.yaml: ") and message in str(e.value)


def test_default_model_is_todays_toy_model():
    r = recipe_from_dict({"task": "toy"})
    assert r.model == ModelSpec("toynet", {})
    model = ToyTask(r.params, model=r.model).build_model()
    # C=8 inputs, hidden 16, SE bottleneck 4, 3 classes, by hand:
    # conv 16*8*5+16, SE fc1 16*4+4 and fc2 4*16+16, head 16*3+3
    assert sum(p.numel() for p in model.parameters()) == 656 + 68 + 80 + 51
    assert [k for k in model.state_dict() if k.startswith("se.")] == [
        "se.fc1.weight", "se.fc1.bias", "se.fc2.weight", "se.fc2.bias"
    ]  # fmt: skip


class Gate(nn.Module):
    """A user's channel attention: one learned gate per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.logit = nn.Parameter(torch.zeros(channels))

    def forward(self, x, lengths=None):
        return x * torch.sigmoid(self.logit)[:, None]


@pytest.fixture
def user_gate():
    register_channel_attention("user_gate", Gate)
    yield
    del CHANNEL_ATTENTION["user_gate"]


@pytest.mark.parametrize("attention, n_attention_params", [("se", 42), ("eca", 3), ("cbam", 16), ("none", 0),
                                                           ("user_gate", 8)])  # fmt: skip
def test_attention_is_one_key_and_trains(user_gate, attention, n_attention_params):
    # hidden 8: SE 8*2+2 + 2*8+8 = 42, ECA a k=3 conv without bias, CBAM's shared MLP 8*2 + 2*8 without bias
    r = load_recipe_from(_raw(hidden=8), [f"model.attention={attention}"])
    task = ToyTask(r.params, model=r.model)
    model = task.build_model()
    base = 4 * 8 * 5 + 8 + 8 * 2 + 2  # conv + head
    assert sum(p.numel() for p in model.parameters()) == base + n_attention_params
    batch = task.collate([task.build_datasets()["train"][i] for i in range(8)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    loss = F.cross_entropy(model(batch["x"], batch["lengths"]), batch["y"])
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = {k for k, p in model.named_parameters() if not torch.equal(before[k], p)}
    assert {"conv.weight", "head.weight"} <= changed
    # the attention layer is in the graph: every one of its parameters got a gradient (which may be zero for a
    # dead ReLU unit of a tiny bottleneck)
    attn = [p for k, p in model.named_parameters() if k.startswith("se.")]
    assert all(p.grad is not None for p in attn)
    assert sum(p.numel() for p in attn) == n_attention_params


def load_recipe_from(raw, overrides, tmp_path=None):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path, overrides)


def test_old_params_keys_are_carried_with_one_warning():
    with pytest.warns(FutureWarning, match=r"params.hidden -> model.hidden, params.dropout -> model.dropout"):
        r = recipe_from_dict({"task": "toy", "params": {"hidden": 4, "dropout": 0.1}})
    assert r.model == ModelSpec("toynet", {"hidden": 4, "dropout": 0.1})
    assert not hasattr(r.params, "hidden")
    with pytest.raises(
        ConfigError, match=r"params.hidden=4 and model.hidden=8 disagree; .* keep only model.hidden"
    ):
        recipe_from_dict({"task": "toy", "params": {"hidden": 4}, "model": {"hidden": 8}})


def test_an_old_mapping_of_constructor_arguments_is_spread_into_the_model_section(monkeypatch):
    """``moved_to_model = {"<old>": "**"}``: params.<old> was a dict of constructor arguments (EEG's
    params.model_kwargs); each key moves to model.<key> with the one warning, and is checked as such."""
    monkeypatch.setattr(ToyTask, "moved_to_model", {"net": "**"})
    with pytest.warns(
        FutureWarning, match=r"params.net.hidden -> model.hidden, params.net.dropout -> model.dropout"
    ):
        r = recipe_from_dict({"task": "toy", "params": {"net": {"hidden": 4, "dropout": 0.1}}})
    assert r.model == ModelSpec("toynet", {"hidden": 4, "dropout": 0.1})
    with pytest.raises(ConfigError, match=r"params.net.hidden=4 and model.hidden=8 disagree"):
        recipe_from_dict({"task": "toy", "params": {"net": {"hidden": 4}}, "model": {"hidden": 8}})
    with pytest.raises(ConfigError, match=r"params.net must be a mapping, got list"):
        recipe_from_dict({"task": "toy", "params": {"net": [4]}})
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match=r"unknown key 'model.hiden'"):
        recipe_from_dict({"task": "toy", "params": {"net": {"hiden": 4}}})


def test_model_section_is_stored_with_the_run_and_restored(tmp_path):
    raw = toy_raw(tmp_path, epochs=1, run_name="m")
    raw["model"] = {"name": "toynet", "hidden": 6, "attention": "eca"}
    r = recipe_from_dict(raw, name="toy")
    d = to_dict(r)
    assert d["model"] == {"name": "toynet", "hidden": 6, "attention": "eca"}
    assert recipe_from_dict(yaml.safe_load(yaml.safe_dump(d))) == r


def test_a_registered_model_can_be_named(monkeypatch):
    class Tiny(nn.Module):
        def __init__(self, n_channels: int, n_classes: int, width: int = 3):
            super().__init__()
            self.lin = nn.Linear(n_channels, n_classes)
            self.width = width

        def forward(self, x, lengths=None):
            return self.lin(x.mean(-1))

    monkeypatch.setitem(MODELS, "toy", dict(MODELS["toy"]))
    register_model("toy", "tiny", Tiny)
    r = recipe_from_dict(_raw(name="tiny", width=5))
    model = ToyTask(r.params, model=r.model).build_model()
    assert isinstance(model, Tiny) and model.width == 5
    with pytest.raises(ValueError, match="already registered"):
        register_model("toy", "tiny", Tiny)


def test_python_api_takes_a_mapping_and_checks_it():
    task = ToyTask(ToyParams(n_channels=4, n_classes=2), model={"hidden": 4, "attention": "none"})
    assert task.build_model().head.in_features == 4
    with pytest.raises(ValueError, match="did you mean 'model.attention'"):
        ToyTask(ToyParams(), model={"atention": "eca"})
    assert model_spec("toy", None, "toynet") == ModelSpec("toynet", {})
