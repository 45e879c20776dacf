"""The speaker task's ``model:`` section: today's models by default and in every shipped recipe, old
``params.<key>`` spellings read with one warning, block attention switched by one override, shapes from the
datasets (built once)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml

from sigattn.models.registry import ModelSpec
from sigattn.tasks.speaker.task import SpeakerParams, SpeakerTask
from sigattn.train.config import ConfigError, load_recipe, recipe_from_dict

ROOT = Path(__file__).resolve().parents[3]
TINY_DATA = dict(synth_train_speakers=6, synth_test_speakers=3, val_speakers=2, synth_utts=2, synth_seconds=0.6,
                 crop_seconds=0.3, cohort_size=0)  # fmt: skip
TINY_MODEL = dict(channels=16, mfa_channels=24, embed_dim=8, attention_channels=4, se_channels=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def embedding_of(recipe) -> torch.nn.Module:
    return SpeakerTask(recipe.params, model=recipe.model).build_embedding()


def test_default_recipe_builds_todays_model():
    # measured on the code before the model section (SpeakerParams() -> ECAPATDNN(80, 512, 1536, 192)):
    # 6,190,720, WeSpeaker's published 6.19 M for ECAPA-TDNN C=512
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = recipe_from_dict({"task": "speaker"})
    assert r.model == ModelSpec("ecapa", {})
    assert n_params(embedding_of(r)) == 6_190_720
    assert n_params(SpeakerTask().build_embedding()) == 6_190_720


# embedding-network parameter counts measured on the code before the model section (git 100f3ac)
SHIPPED = {
    "recipes/speaker_verification/ecapa_c1024_voxceleb2.yaml": 14_657_088,
    "recipes/speaker_verification/ecapa_c1024_lm_finetune.yaml": 14_657_088,
    "recipes/speaker_verification/librispeech_smoke.yaml": 565_616,
    "sigattn/tasks/speaker/demo.yaml": 442_544,
}


@pytest.mark.parametrize("path", sorted(SHIPPED))
def test_shipped_recipes_build_the_models_they_built_before(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # written in the new vocabulary: no FutureWarning
        r = load_recipe(ROOT / path)
    assert r.model.name == "ecapa"
    assert n_params(embedding_of(r)) == SHIPPED[path]


# demo.yaml as it was written before the model section
OLD_DEMO_PARAMS = dict(source="synthetic", synth_train_speakers=64, synth_test_speakers=20, val_speakers=8,
                       synth_utts=4, synth_seconds=2.5, cmn=False, crop_seconds=1.0, epoch_size=512,
                       cohort_size=64, asnorm_top_k=20, model="ecapa", channels=128, mfa_channels=384,
                       embed_dim=64, attention_channels=32, se_channels=32, margin=0.2, scale=30.0,
                       margin_warmup=[0, 2])  # fmt: skip


def test_an_old_style_recipe_loads_with_one_warning_and_builds_the_same_model():
    with pytest.warns(FutureWarning) as record:
        old = recipe_from_dict({"task": "speaker", "params": dict(OLD_DEMO_PARAMS)})
    future = [w for w in record if issubclass(w.category, FutureWarning)]
    assert len(future) == 1
    message = str(future[0].message)
    for key in ("model", "channels", "mfa_channels", "embed_dim", "attention_channels", "se_channels"):
        assert f"params.{key} -> model.{'name' if key == 'model' else key}" in message
    assert old.model == ModelSpec(
        "ecapa", dict(channels=128, mfa_channels=384, embed_dim=64, attention_channels=32, se_channels=32)
    )
    new = load_recipe(ROOT / "sigattn/tasks/speaker/demo.yaml")
    assert old.params == new.params
    torch.manual_seed(0)
    a = embedding_of(old)
    torch.manual_seed(0)
    b = embedding_of(new)
    assert n_params(a) == n_params(b) == SHIPPED["sigattn/tasks/speaker/demo.yaml"]
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_old_speechbrain_layout_spellings():
    # params.model: speechbrain alone built SpeechBrain's pretrained layout (C=1024, MFA 3072): still so
    with pytest.warns(FutureWarning, match=r"params.model -> model.name"):
        r = recipe_from_dict({"task": "speaker", "params": {"model": "speechbrain"}})
    assert n_params(embedding_of(r)) == 20_767_552
    # params.sb_channels was that layout's channel list: its constructor's channels
    with pytest.warns(FutureWarning, match=r"params.sb_channels -> model.channels"):
        r = recipe_from_dict(
            {"task": "speaker", "params": {"model": "speechbrain", "sb_channels": [16, 16, 16, 16, 48]}}
        )
    assert r.model == ModelSpec("speechbrain", {"channels": [16, 16, 16, 16, 48]})
    assert embedding_of(r).mfa.conv.out_channels == 48
    # that layout's embedding size is lin_neurons (SpeechBrain's name): params.embed_dim, which set it, goes there
    with pytest.warns(FutureWarning, match=r"params.embed_dim -> model.lin_neurons"):
        r = recipe_from_dict(
            {
                "task": "speaker",
                "params": {"model": "speechbrain", "embed_dim": 32, "sb_channels": [16] * 4 + [48]},
            }
        )
    assert r.model == ModelSpec("speechbrain", {"lin_neurons": 32, "channels": [16, 16, 16, 16, 48]})
    assert embedding_of(r)(torch.randn(2, 80, 50)).shape == (2, 32)
    # and for the paper layout it stays embed_dim
    with pytest.warns(FutureWarning, match=r"params.embed_dim -> model.embed_dim"):
        r = recipe_from_dict({"task": "speaker", "params": {"embed_dim": 32}})
    assert r.model == ModelSpec("ecapa", {"embed_dim": 32})
    # params.mfa_channels has no counterpart there (its MFA width is the last of the channel list): refused
    with pytest.raises(ConfigError, match=r"params.mfa_channels has no counterpart in model 'speechbrain'"):
        recipe_from_dict({"task": "speaker", "params": {"model": "speechbrain", "mfa_channels": 96}})


def test_an_old_paper_layout_width_is_refused_for_the_speechbrain_layout():
    # params.channels (the paper layout's C) never applied to the SpeechBrain layout: an int there is refused
    with pytest.warns(FutureWarning):
        r = recipe_from_dict({"task": "speaker", "params": {"model": "speechbrain", "channels": 512}})
    with pytest.raises(
        ValueError, match=r"model.channels of the speechbrain layout is its list of block widths"
    ):
        SpeakerTask(r.params, model=r.model)


def test_speechbrain_layout_through_the_model_section():
    r = recipe_from_dict({"task": "speaker", "model": {"name": "speechbrain"}})
    assert n_params(embedding_of(r)) == 20_767_552  # SpeechBrain's spkrec-ecapa-voxceleb layout
    r = recipe_from_dict(
        {"task": "speaker", "params": {"n_mels": 40},
         "model": {"name": "speechbrain", "channels": [16, 16, 16, 16, 48], "lin_neurons": 8}}
    )  # fmt: skip
    net = embedding_of(r).eval()
    assert net.blocks[0].conv.in_channels == 40  # input_size from params.n_mels
    assert net(torch.randn(2, 40, 50)).shape == (2, 8)


@pytest.mark.parametrize(
    "model, message",
    [
        ({"in_channels": 40}, "model.in_channels is decided by the task's data"),
        ({"name": "speechbrain", "input_size": 40}, "model.input_size is decided by the task's data"),
        ({"chanels": 64}, "unknown key 'model.chanels'; did you mean 'model.channels'?"),
        ({"name": "ecapa2"}, "unknown model.name 'ecapa2'; did you mean 'ecapa'?"),
        ({"channels": "wide"}, "key 'model.channels' expects int"),
    ],
)
def test_model_section_is_checked(model, message):
    with pytest.raises(ConfigError, match=message):
        recipe_from_dict({"task": "speaker", "model": model})


def _tiny_raw() -> dict:
    return {"task": "speaker", "params": dict(TINY_DATA), "model": dict(TINY_MODEL)}


@pytest.mark.parametrize(
    "attention, layer, n_gate",
    # per block at C=16, SE bottleneck 4: SE 16*4+4 + 4*16+16 = 148; ECA one k=3 conv without bias; CBAM's
    # shared MLP 16*1 + 1*16 without biases (its own reduction, not se_channels); none: the identity
    [
        ("se", "SqueezeExcite", 148),
        ("eca", "ECA", 3),
        ("cbam", "CBAMChannel", 32),
        ("none", "NoAttention", 0),
    ],
)
def test_attention_is_one_override_and_trains(tmp_path, attention, layer, n_gate):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_tiny_raw()))
    r = load_recipe(path, [f"model.attention={attention}"])
    assert r.model.kwargs["attention"] == attention
    task = SpeakerTask(r.params, seed=0, model=r.model)
    ds = task.build_datasets()
    model = task.build_model()
    blocks = model.embedding.blocks
    assert {type(b.se).__name__ for b in blocks} == {layer}
    assert sum(n_params(b.se) for b in blocks) == len(blocks) * n_gate
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    batch = task.collate([ds["train"][i] for i in range(4)])
    loss, logs = task.loss(model, batch, epoch=0, step=0)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and 0 <= logs["acc"] <= 1
    changed = {k for k, p in model.named_parameters() if not torch.equal(before[k], p)}
    assert {"embedding.layer1.conv.weight", "head.weight"} <= changed
    gate = [p for k, p in model.named_parameters() if ".se." in k]
    assert all(p.grad is not None for p in gate)


def test_shapes_flow_from_the_datasets_which_are_built_once(monkeypatch):
    calls = []
    build = SpeakerTask.build_datasets

    def counted(self):
        calls.append(1)
        return build(self)

    monkeypatch.setattr(SpeakerTask, "build_datasets", counted)
    task = SpeakerTask(SpeakerParams(n_mels=40, **TINY_DATA), model=TINY_MODEL)
    task.build_datasets()
    model = task.build_model()  # as the engine calls them: the datasets are not built again
    assert len(calls) == 1
    assert model.embedding.layer1.conv.in_channels == 40
    assert model.head.weight.shape == (task.n_classes, 8) and task.n_classes == 6
    alone = SpeakerTask(SpeakerParams(**TINY_DATA), model=TINY_MODEL)
    model = alone.build_model()  # called first, it builds the datasets itself, once
    assert len(calls) == 2 and model.head.weight.shape == (6, 8)
    assert alone.example_inputs()[0].shape[1] == 80
