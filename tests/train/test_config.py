"""Recipe loading: typed sections, errors naming the key path / closest key / expected type, overrides."""

from __future__ import annotations

import pytest
import yaml

from sigattn.tasks.toy import ToyParams
from sigattn.train.config import ConfigError, Recipe, load_recipe, recipe_from_dict, to_dict


def write(tmp_path, data, name="r.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_load_typed_and_overrides(tmp_path):
    p = write(
        tmp_path, {"task": "toy", "params": {"n_classes": 2}, "optim": {"lr": 1}, "trainer": {"epochs": 3}}
    )
    r = load_recipe(
        p, ["optim.lr=3e-4", "trainer.clip_grad_norm=1", "optim.betas=[0.8, 0.9]", "model.hidden=4"]
    )
    assert isinstance(r, Recipe) and r.name == "r"
    assert isinstance(r.params, ToyParams) and r.params.n_classes == 2
    assert r.model.name == "toynet" and r.model.kwargs == {"hidden": 4}
    assert r.optim.lr == 3e-4 and isinstance(r.optim.lr, float)
    assert r.trainer.clip_grad_norm == 1.0 and r.trainer.epochs == 3
    assert r.optim.betas == [0.8, 0.9]
    r2 = load_recipe(p, ["trainer.clip_grad_norm=null"])
    assert r2.trainer.clip_grad_norm is None
    assert isinstance(load_recipe(p).optim.lr, float)  # int 1 accepted for a float key


def test_unknown_key_names_path_and_closest(tmp_path):
    p = write(tmp_path, {"task": "toy", "trainer": {"epoch": 3}})
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert "'trainer.epoch'" in msg and "did you mean 'trainer.epochs'" in msg and str(p) in msg
    with pytest.raises(ConfigError, match=r"'params.n_clases'.*did you mean 'params.n_classes'"):
        load_recipe(write(tmp_path, {"task": "toy", "params": {"n_clases": 3}}))
    with pytest.raises(ConfigError, match=r"unknown key 'optimizer'.*did you mean 'optim'"):
        load_recipe(write(tmp_path, {"task": "toy", "optimizer": {}}))
    with pytest.raises(ConfigError, match=r"unknown key 'sched.warmup'.*'sched.warmup_steps'"):
        load_recipe(write(tmp_path, {"task": "toy"}), ["sched.warmup=10"])
    with pytest.raises(ConfigError, match=r"unknown task 'toi'.*did you mean 'toy'"):
        recipe_from_dict({"task": "toi"})


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ({"trainer": {"epochs": "ten"}}, "trainer.epochs", "expects int"),
        ({"trainer": {"epochs": 2.5}}, "trainer.epochs", "expects int"),
        ({"trainer": {"amp": "yes"}}, "trainer.amp", "expects bool"),
        ({"optim": {"lr": "fast"}}, "optim.lr", "expects float"),
        ({"optim": {"lr": True}}, "optim.lr", "expects float"),
        ({"optim": {"betas": 0.9}}, "optim.betas", "expects a list"),
        ({"trainer": {"clip_grad_norm": "x"}}, "trainer.clip_grad_norm", "float | None"),
        ({"params": {"n_classes": [1]}}, "params.n_classes", "expects int"),
        ({"model": {"hidden": [1]}}, "model.hidden", "expects int"),
        ({"trainer": 3}, "trainer", "must be a mapping"),
    ],
)
def test_wrong_type_names_key_and_type(section, value, expected):
    with pytest.raises(ConfigError) as e:
        recipe_from_dict({"task": "toy", **section})
    assert repr(value) in str(e.value) and expected in str(e.value)


def test_choices_and_param_checks():
    with pytest.raises(ConfigError, match=r"'optim.name' must be one of"):
        recipe_from_dict({"task": "toy", "optim": {"name": "lamb"}})
    with pytest.raises(ConfigError, match=r"params.*n_classes"):  # ToyParams.__post_init__
        recipe_from_dict({"task": "toy", "params": {"n_classes": 99}})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"recipe file not found: '.*nope.yaml'"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML"):
        load_recipe(write(tmp_path, "task: [toy\n", "bad.yaml"))
    with pytest.raises(ConfigError, match=r"must be a YAML mapping"):
        load_recipe(write(tmp_path, "- 1\n- 2\n", "list.yaml"))
    with pytest.raises(ConfigError, match=r"not of the form"):
        load_recipe(write(tmp_path, {"task": "toy"}), ["optim.lr"])


def test_no_code_execution(tmp_path):
    p = write(tmp_path, "task: toy\nparams: !!python/object/apply:os.system ['echo hacked']\n", "evil.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(p)


def test_roundtrip_to_dict(tmp_path):
    r = recipe_from_dict({"task": "toy", "model": {"hidden": 4}, "sched": {"name": "cosine"}}, name="x")
    d = to_dict(r)
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    r2 = recipe_from_dict(d)
    assert r2 == r and r2.name == "x"


def test_shipped_toy_recipe_loads():
    from pathlib import Path

    r = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "toy.yaml")
    assert r.task == "toy" and r.trainer.epochs >= 1


@pytest.mark.parametrize(
    "key, value",
    [("eval_every", 0), ("log_every", 0), ("grad_accum", 0), ("batch_size", 0), ("epochs", 0), ("epochs", -1),
     ("max_steps", -3), ("eval_batch_size", 0), ("checkpoint_every", -1), ("num_workers", -1)],
)  # fmt: skip
def test_trainer_counts_out_of_range_are_refused_before_training(key, value):
    # before: eval_every=0 crashed after the first epoch (modulo by zero), epochs=0 reported untrained metrics
    with pytest.raises(ConfigError, match=rf"trainer\.{key} must be >= [01], got {value}"):
        recipe_from_dict({"task": "toy", "trainer": {key: value}})


def test_max_steps_zero_or_null_means_epochs_decide():
    assert recipe_from_dict({"task": "toy", "trainer": {"max_steps": 0, "epochs": 2}}).trainer.epochs == 2
    assert recipe_from_dict({"task": "toy", "trainer": {"max_steps": 5, "epochs": 0}}).trainer.max_steps == 5
