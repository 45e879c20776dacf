"""Issue #12: every bad input gets one clear line (exit code 2 for user errors); nothing is silently lost."""

from __future__ import annotations

import pytest
import yaml

from sigattn.cli import main
from sigattn.train import checkpoint as ck
from sigattn.train.config import MAX_NODES, ConfigError, apply_overrides, load_recipe, recipe_from_dict

from .helpers import toy_raw


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``sigattn ARGV``; it must exit 2 with exactly one line on stderr, which is returned."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    return err


def bomb(levels: int, width: int = 10) -> str:
    """YAML whose ``optim.lr`` expands to ``width ** levels`` items through nested aliases."""
    lines = ["task: toy", "junk:", "  a0: &a0 [" + ", ".join(["1"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines + ["optim:", f"  lr: *a{levels - 1}", ""])


# ------------------------------------------------------------------------------------- item 1: alias bombs
def test_billion_laughs_recipe_is_refused_naming_the_file(tmp_path, capsys):
    # before: the error message expanded 10^9 items (3.2 GB, MemoryError)
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(9))
    err = one_line_error(capsys, ["train", str(path)])
    assert err == (
        f"sigattn train: error: {path}: expands to more than {MAX_NODES} YAML nodes (anchors/aliases repeated "
        "inside each other?); a recipe is far smaller: write the values out"
    )


def test_alias_bomb_just_over_the_limit_is_refused_and_messages_stay_short(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(bomb(6))  # 10^6 items: before, a 3 MB error message
    with pytest.raises(ConfigError, match=r"b\.yaml: expands to more than 100000 YAML nodes"):
        load_recipe(path)
    # a big value under the limit: the message names the key and stays a few hundred characters
    raw = {"task": "toy", "optim": {"lr": [[i] * 100 for i in range(500)]}}
    with pytest.raises(ConfigError) as e:
        recipe_from_dict(raw, source="r.yaml")
    assert str(e.value).startswith("r.yaml: key 'optim.lr' expects float, got list [[0, 0, 0, 0, 0, 0, 0, 0")
    assert len(str(e.value)) < 300
    with pytest.raises(ConfigError, match=r"^r\.yaml: unknown key 'optim\.xxxx") as e:  # a 10^5-character key
        recipe_from_dict({"task": "toy", "optim": {"x" * 100_000: 1}}, source="r.yaml")
    assert len(str(e.value)) < 300


def test_recursive_alias_and_override_bombs(tmp_path):
    path = tmp_path / "rec.yaml"
    path.write_text("task: toy\noptim:\n  betas: &b [0.9, *b]\n")
    with pytest.raises(ConfigError, match=r"rec\.yaml: recursive alias \(a node that contains itself\)"):
        load_recipe(path)
    items = ["&a0 [1,1,1,1,1,1,1,1,1,1]"] + [
        f"&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)
    ]
    with pytest.raises(ConfigError, match=r"^override 'optim\.lr=\[&a0 .*: expands to more than 100000"):
        apply_overrides({"task": "toy"}, ["optim.lr=[" + ", ".join(items) + "]"])
    # a normal alias is fine
    path.write_text("task: toy\nsched: {name: cyclic, max_lr: &m 0.1}\noptim: {lr: *m}\n")
    assert load_recipe(path).optim.lr == 0.1


# --------------------------------------------------------------------------------- item 5a: non-UTF-8 file
def test_non_utf8_recipe_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"task: toy\n# caf\xe9\n")  # 'task: toy\n' is 10 bytes, '# caf' 5 more: offset 15
    err = one_line_error(capsys, ["train", str(path)])
    assert err == (
        f"sigattn train: error: {path}: not UTF-8 text (byte 0xe9 at offset 15); save the recipe as UTF-8"
    )


def test_malformed_yaml_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("task: toy\noptim: [1,\n")
    err = one_line_error(capsys, ["train", str(path)])
    assert err.startswith(f"sigattn train: error: {path}: not valid YAML: ")


# ----------------------------------------------------------------------------- item 5b: non-finite numbers
@pytest.mark.parametrize(
    "override, key, shown",
    [
        ("optim.lr=.inf", "optim.lr", "inf"),
        ("optim.lr=-.inf", "optim.lr", "-inf"),
        ("optim.lr=.nan", "optim.lr", "nan"),
        ("optim.lr=1e999", "optim.lr", "inf"),
        ("trainer.clip_grad_norm=.inf", "trainer.clip_grad_norm", "inf"),  # Optional[float]
        ("optim.betas=[0.9,.nan]", "optim.betas[1]", "nan"),
        ("params.signal=.inf", "params.signal", "inf"),  # a task's own float parameter
    ],
)
def test_non_finite_floats_are_refused_at_config_time(tmp_path, capsys, override, key, shown):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(toy_raw(tmp_path, epochs=1)))
    err = one_line_error(capsys, ["train", str(path), override])
    assert err == (
        f"sigattn train: error: {path}: key {key!r} must be a finite number, got {shown} (no setting takes "
        ".inf or .nan; null means 'none' where a key allows it)"
    )
    assert not (tmp_path / "toy").exists()  # refused before any run folder was made


def test_null_still_means_none_for_optional_floats():
    raw = toy_raw(".", epochs=1, clip_grad_norm=None)
    assert recipe_from_dict(raw).trainer.clip_grad_norm is None


# ------------------------------------------------------------------ item 5c: checkpoint that does not fit
def test_checkpoint_that_does_not_fit_the_model_is_one_line(tmp_path, capsys):
    # before: a 19-line size-mismatch RuntimeError from load_state_dict
    raw = toy_raw(tmp_path, epochs=1, run_name="w")  # hidden 8, 4 channels: conv.weight is (8, 4, 5)
    raw["params"].update(n_train=16, n_val=0, n_test=0)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path)]) == 0
    run = tmp_path / "toy" / "w"
    ckpt = run / "checkpoints" / "step-000000001.ckpt"
    before = ckpt.read_bytes()
    capsys.readouterr()
    err = one_line_error(capsys, ["train", "--resume", str(run), "model.hidden=16", "trainer.epochs=2"])
    assert err == (
        f"sigattn train: error: checkpoint {str(ckpt)!r} does not fit the model: parameter 'conv.weight' is "
        "(8, 4, 5) in the checkpoint but (16, 4, 5) in the model; the recipe's model settings differ from the "
        "checkpoint's: model.hidden is 8 in the checkpoint, 16 in the recipe"
    )
    assert ckpt.read_bytes() == before
    # `sigattn eval` of a checkpoint whose stored recipe no longer builds its model
    state = ck.load_checkpoint(ckpt)
    state["config"]["model"]["hidden"] = 16
    odd = ck.save_checkpoint(state, tmp_path / "odd.ckpt")
    err = one_line_error(capsys, ["eval", str(odd)])
    assert err == (
        f"sigattn eval: error: checkpoint {str(odd)!r} does not fit the model: parameter 'conv.weight' is "
        "(8, 4, 5) in the checkpoint but (16, 4, 5) in the model; the model built from its stored recipe "
        "differs (trained with another sigattn version?)"
    )


# ------------------------------------------------------------------- item 5d: overrides after an option
def test_overrides_after_run_dir_are_applied(tmp_path, capsys):
    # before: argparse stopped at --run-dir and exited with "unrecognized arguments: optim.lr=0.05"
    raw = toy_raw(tmp_path, epochs=2)
    raw["params"].update(n_train=16, n_val=0, n_test=0)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(raw))
    run = tmp_path / "x"
    assert main(["train", str(path), "--run-dir", str(run), "optim.lr=0.05", "trainer.epochs=1"]) == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["optim"]["lr"] == 0.05 and stored["trainer"]["epochs"] == 1  # the recipe says 0.01 and 2
    assert yaml.safe_load((run / "metrics.json").read_text())["steps"] == 1.0
    with pytest.raises(SystemExit) as e:  # an unknown option is still argparse's error
        main(["train", str(path), "--run-dir", str(run), "--bogus"])
    assert e.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
