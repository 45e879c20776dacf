"""EEG recipes' ``model:`` section: every recipe builds its model through the registry, one key switches
the model or DBConformer's pool, old ``params.model``/``params.model_kwargs`` are carried over, the model is
shaped by the datasets (loaded once), default parameter counts unchanged."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from sigattn.models.dbconformer import DBConformer
from sigattn.models.registry import MODELS, ModelSpec, model_class, register_model
from sigattn.tasks.eeg import task as eeg_task
from sigattn.tasks.eeg.task import EEGParams, EEGTask, TrialDataset
from sigattn.train.config import ConfigError, load_recipe, recipe_from_dict
from sigattn.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "sigattn" / "tasks" / "eeg" / "demo.yaml"


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _load_quietly(path: Path, overrides: list[str] = ()):
    """Load a recipe; the old-spelling warning fails the test (others, e.g. MNE's, do not)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*model settings belong", category=FutureWarning)
        return load_recipe(path, list(overrides))


def _fake_datasets(n_chans: int, n_times: int, sfreq: float, n_classes: int) -> dict[str, TrialDataset]:
    """A training set of a real recording's shapes (2 trials of zeros)."""
    ds = TrialDataset(torch.zeros(2, n_chans, n_times).numpy(), [0, 1], [0, 1],
                      ch_names=[f"E{i}" for i in range(n_chans)], sfreq=sfreq,
                      class_names=[f"c{k}" for k in range(n_classes)])  # fmt: skip
    return {"train": ds}


# Parameter counts measured on the code before the model section (params.model_kwargs, baselines.build_model):
# DBConformer of each recipe with its recording's shapes.
RECIPES = {
    # recipe: (channels, samples, Hz, classes, parameters)
    "dbconformer_bnci2014001.yaml": (22, 1001, 250.0, 2, 93_747),
    "eegmmidb_lr.yaml": (64, 641, 160.0, 2, 97_107),
    "eegmmidb_4class.yaml": (64, 641, 160.0, 4, 97_173),
}


def test_every_eeg_recipe_has_a_model_section_and_builds_through_the_registry(monkeypatch):
    paths = sorted((REPO / "recipes" / "eeg_motor_imagery").glob("*.yaml"))
    assert [p.name for p in paths] == sorted(RECIPES)
    for path in paths:
        raw = yaml.safe_load(path.read_text())
        assert "model" in raw and not {"model", "model_kwargs"} & set(raw["params"]), path.name
        r = _load_quietly(path)
        assert r.model.name == "dbconformer"
        task = EEGTask(r.params, model=r.model)
        n_chans, n_times, sfreq, n_classes, count = RECIPES[path.name]
        monkeypatch.setattr(
            task, "build_datasets", lambda s=(n_chans, n_times, sfreq, n_classes): _fake_datasets(*s)
        )
        model = task.build_model()
        assert type(model) is model_class("eeg", "dbconformer") and _n_params(model) == count, path.name
        assert model(torch.zeros(2, n_chans, n_times)).shape == (2, n_classes)


def test_demo_builds_todays_dbconformer_from_its_synthetic_data():
    r = _load_quietly(DEMO)
    assert r.model == ModelSpec(
        "dbconformer", {"patch_size": 16, "branch_dropout": 0.8, "electrode_embedding_std": 0.0}
    )
    task = EEGTask(r.params, model=r.model)
    model = task.build_model()
    # measured on the code before the model section (22 electrodes, 128 samples at 64 Hz, 3 classes)
    assert isinstance(model, DBConformer) and _n_params(model) == 93_780 and len(model.state_dict()) == 92
    assert model.ch_names == task.trials.ch_names


def test_switching_model_and_spatial_pool_is_one_key():
    r = _load_quietly(REPO / "recipes" / "eeg_motor_imagery" / "eegmmidb_lr.yaml", ["model.name=eegnet"])
    assert r.model == ModelSpec("eegnet", {})
    r = _load_quietly(
        REPO / "recipes" / "eeg_motor_imagery" / "eegmmidb_lr.yaml", ["model.spatial_pool=mean"]
    )
    assert r.model == ModelSpec("dbconformer", {"spatial_pool": "mean"})


def _tiny(tmp_path: Path) -> Path:
    raw = {
        "task": "eeg",
        "params": {"n_subjects": 1, "n_trials_per_class": 8, "synthetic_sfreq": 64.0, "duration": 1.0},
        "model": {"name": "dbconformer"},
        "trainer": {"max_steps": 1, "batch_size": 8, "amp": False, "quiet": True, "device": "cpu",
                    "out_dir": str(tmp_path / "runs")},
        "optim": {"name": "adam", "lr": 0.001},
    }  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "override, cls",
    [("model.spatial_pool=mean", "dbconformer"), ("model.name=eegnet", "eegnet")],
)
def test_one_override_trains_one_step(tmp_path, override, cls):
    if cls == "eegnet":
        pytest.importorskip("braindecode")
    r = load_recipe(_tiny(tmp_path), [override])
    trainer = Trainer(r, run_dir=tmp_path / "run")
    m = trainer.fit()
    model = trainer.raw_model
    assert m["steps"] == 1.0 and type(model) is model_class("eeg", cls) and model.n_outputs == 2
    if cls == "dbconformer":
        assert model.spatial_pool == "mean" and model.channel_pool is None
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    key, value = override.split("=")
    assert stored["model"][key.split(".")[1]] == value


def test_baseline_arguments_are_checked_against_its_constructor(tmp_path):
    pytest.importorskip("braindecode")
    path = _tiny(tmp_path)
    r = load_recipe(path, ["model.name=eegnet", "model.drop_prob=0.5", "model.F1=4"])
    assert r.model == ModelSpec("eegnet", {"drop_prob": 0.5, "F1": 4})
    assert EEGTask(r.params, model=r.model).build_model().F1 == 4
    with pytest.raises(
        ConfigError, match=r"unknown key 'model.patch_size'.*valid keys of model eegnet: final_conv_length"
    ):
        load_recipe(path, ["model.name=eegnet", "model.patch_size=8"])
    with pytest.raises(ConfigError, match=r"key 'model.drop_prob' expects float, got str"):
        load_recipe(path, ["model.name=eegnet", "model.drop_prob=high"])
    with pytest.raises(ConfigError, match=r"model.n_chans is decided by the task's data"):
        load_recipe(path, ["model.n_chans=4"])
    with pytest.raises(ConfigError, match=r"model.chs_info is decided by the task's data"):
        load_recipe(path, ["model.name=eegnet", "model.chs_info=[]"])


def test_old_params_model_and_model_kwargs_are_carried_over_with_one_warning():
    old = {"task": "eeg", "params": {"n_subjects": 1, "model": "dbconformer",
                                     "model_kwargs": {"patch_size": 16, "spatial_pool": "mean"}}}  # fmt: skip
    with pytest.warns(FutureWarning) as record:
        r = recipe_from_dict(old)
    assert len([w for w in record if issubclass(w.category, FutureWarning)]) == 1
    message = str(record[0].message)
    assert "params.model -> model.name, params.model_kwargs.patch_size -> model.patch_size" in message
    assert r.model == ModelSpec("dbconformer", {"patch_size": 16, "spatial_pool": "mean"})
    assert not hasattr(r.params, "model") and not hasattr(r.params, "model_kwargs")
    with pytest.warns(FutureWarning):
        r = recipe_from_dict(
            {"task": "eeg", "params": {"model": "eegnet", "model_kwargs": {"drop_prob": 0.3}}}
        )
    assert r.model == ModelSpec("eegnet", {"drop_prob": 0.3})
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match=r"did you mean 'model.patch_size'"):
        recipe_from_dict({"task": "eeg", "params": {"model_kwargs": {"patchsize": 16}}})
    with pytest.raises(
        ConfigError, match=r"params.model_kwargs.patch_size=16 and model.patch_size=32 disagree"
    ):
        recipe_from_dict(
            {"task": "eeg", "params": {"model_kwargs": {"patch_size": 16}}, "model": {"patch_size": 32}}
        )
    # the old demo config (params.model + params.model_kwargs) builds the same model as the new one
    raw = yaml.safe_load(DEMO.read_text())
    model = raw.pop("model")
    raw["params"] |= {"model": model.pop("name"), "model_kwargs": model}
    with pytest.warns(FutureWarning):
        assert recipe_from_dict(raw).model == _load_quietly(DEMO).model


def test_the_model_is_shaped_by_the_datasets_loaded_once(monkeypatch):
    calls = []
    load = eeg_task.load_trials
    monkeypatch.setattr(eeg_task, "load_trials", lambda p: calls.append(p) or load(p))
    task = EEGTask(
        EEGParams(n_subjects=1, n_trials_per_class=6, n_classes=3, synthetic_sfreq=64.0, duration=1.0)
    )
    model = task.build_model()  # before build_datasets: builds them (once), with 3 classes, not 2
    assert model.n_outputs == 3 and model.n_chans == 22 and model.n_times == 64
    datasets = task.build_datasets()
    assert task.build_datasets() is datasets and task.example_inputs()[0].shape == (2, 22, 64)
    assert len(calls) == 1
    train = datasets["train"]
    assert (train.n_chans, train.n_times, train.sfreq, train.class_names) == (
        22,
        64,
        64.0,
        task.trials.class_names,
    )
    task.params.fold = 0  # unchanged params: still the same datasets
    assert task.build_datasets() is datasets
    task.params.alignment = "none"  # other params: built anew
    assert task.build_datasets() is not datasets and len(calls) == 2


def test_the_trainer_loads_the_data_once(monkeypatch, tmp_path):
    calls = []
    load = eeg_task.load_trials
    monkeypatch.setattr(eeg_task, "load_trials", lambda p: calls.append(p) or load(p))
    Trainer(load_recipe(_tiny(tmp_path)), run_dir=tmp_path / "run")._setup()
    assert len(calls) == 1


def test_a_registered_model_gets_the_data_arguments_it_takes(monkeypatch):
    class Tiny(nn.Module):
        def __init__(self, n_chans: int, n_outputs: int, width: int = 3):
            super().__init__()
            self.lin = nn.Linear(n_chans, n_outputs)
            self.width = width

        def forward(self, x):
            return self.lin(x.mean(-1))

    monkeypatch.setitem(MODELS, "eeg", dict(MODELS["eeg"]))
    register_model("eeg", "tiny", Tiny)
    params = {"n_subjects": 1, "n_trials_per_class": 6, "duration": 1.0}
    r = recipe_from_dict({"task": "eeg", "params": params, "model": {"name": "tiny", "width": 5}})
    model = EEGTask(r.params, model=r.model).build_model()
    assert isinstance(model, Tiny) and model.width == 5 and model.lin.in_features == 22
