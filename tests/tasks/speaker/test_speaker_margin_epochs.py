"""The AAM margin follows its warm-up schedule once per epoch, and the train set hears ``set_epoch`` only from
the engine (once per epoch, before the loaders copy it), never again from the speaker task's loss."""

import pytest

from sigattn.tasks.speaker import data as speaker_data
from sigattn.train.config import recipe_from_dict
from sigattn.train.trainer import Trainer
from sigattn.utils import unwrap

TINY_MODEL = dict(channels=16, mfa_channels=24, embed_dim=8, attention_channels=4, se_channels=4)
TINY = dict(synth_train_speakers=6, synth_test_speakers=3, val_speakers=2, synth_utts=2, synth_seconds=0.6,
            crop_seconds=0.3, cohort_size=0)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def test_margin_after_n_epochs_is_the_warmup_value_and_set_epoch_comes_once_per_epoch(tmp_path, monkeypatch):
    told = []
    for cls in (speaker_data.CropDataset, speaker_data.FeatureCropDataset):
        original = cls.set_epoch

        def spy(self, epoch, _original=original):
            told.append(int(epoch))
            _original(self, epoch)

        monkeypatch.setattr(cls, "set_epoch", spy)
    margins = []
    from sigattn.tasks.speaker.task import SpeakerTask

    loss = SpeakerTask.loss

    def record(self, model, batch, *, epoch, step):
        out = loss(self, model, batch, epoch=epoch, step=step)
        margins.append((epoch, unwrap(model).head.margin))
        return out

    monkeypatch.setattr(SpeakerTask, "loss", record)
    monkeypatch.setattr(SpeakerTask, "plots", lambda *args, **kw: [])  # not what this test checks; slow
    raw = {
        "task": "speaker",
        "params": TINY | {"margin": 0.2, "margin_warmup": [0.0, 4.0]},
        "model": TINY_MODEL,
        "trainer": {"epochs": 3, "batch_size": 4, "amp": False, "quiet": True, "out_dir": str(tmp_path)},
        "optim": {"name": "adam", "lr": 0.001},
    }
    trainer = Trainer(recipe_from_dict(raw, name="margin"))
    trainer.fit()
    assert told == [0, 1, 2]  # the engine's call before each epoch; the loss adds none
    # warm-up from 0 at epoch 0 to 0.2 at epoch 4: 0.2 * e / 4 during epoch e, the same at every step
    by_epoch = {e: {m for ep, m in margins if ep == e} for e in range(3)}
    assert by_epoch == {0: {0.0}, 1: {0.05}, 2: {0.1}}
    assert unwrap(trainer.model).head.margin == pytest.approx(0.1)  # after 3 epochs
