"""``sigattn demo`` takes its domains from the task registry (``sigattn.tasks.TASKS``) and each domain's
``demo.yaml``: a new domain is a folder plus recipes, with no list to edit in ``sigattn.train.demo``."""

import pytest

import sigattn.train.demo as demo
from sigattn.cli import main
from sigattn.tasks import TASKS


def test_existing_domains_in_registry_order(capsys):
    assert demo.available_demos() == ["speaker", "eeg", "forecast"]
    assert main(["demo", "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["speaker", "eeg", "forecast"]
    assert "toy" in TASKS and "toy" not in demo.available_demos()  # registered, but no demo.yaml folder
    for d in (
        "speaker",
        "eeg",
        "forecast",
        "toy",
    ):  # every listed demo (and the toy stand-in) builds its recipe
        assert demo.demo_recipe(d, quick=True).trainer.epochs == 1


def test_a_new_domain_is_a_registry_entry_plus_its_demo_yaml(tmp_path, monkeypatch, capsys):
    yaml = tmp_path / "demo.yaml"
    yaml.write_text("task: toy\nparams: {n_train: 32, n_val: 8, n_test: 8}\ntrainer: {epochs: 3}\n")
    found = demo._demo_file
    monkeypatch.setattr(demo, "_demo_file", lambda d: yaml if d == "newdomain" else found(d))
    monkeypatch.setitem(TASKS, "newdomain", "sigattn.tasks.toy:ToyTask")
    assert demo.available_demos() == ["speaker", "eeg", "forecast", "newdomain"]
    assert main(["demo", "--list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "newdomain"
    recipe = demo.demo_recipe("newdomain")
    assert recipe.name == "demo-newdomain" and recipe.task == "toy" and recipe.trainer.epochs == 3
    monkeypatch.delitem(TASKS, "newdomain")  # unregistered: its folder alone does not make a demo
    assert "newdomain" not in demo.available_demos()
    with pytest.raises(
        ValueError, match=r"unknown demo domain 'newdomain'; valid: eeg, forecast, speaker, toy"
    ):
        demo.run_demo(tmp_path / "out", ["newdomain"])


def test_without_any_domain_demo_the_toy_stands_in(monkeypatch):
    monkeypatch.setattr(demo, "_demo_file", lambda d: None)
    assert demo.available_demos() == ["toy"]
