"""Short clips (issue #12, item 7): the task's evaluation path (``UtteranceDataset`` -> ``collate`` ->
``predict``) and ``embed()`` give the same embedding for every clip length, and both refuse the same clips."""

import numpy as np
import pytest
import soundfile as sf
import torch

from sigattn.tasks.speaker.inference import embed
from sigattn.tasks.speaker.task import SpeakerParams, SpeakerTask

# the embedding network of these tests: a tiny ECAPA-TDNN (the recipe's model section)
TINY_MODEL = dict(channels=16, mfa_channels=24, embed_dim=8, attention_channels=4, se_channels=4)

SECONDS = (0.1, 0.2, 0.3, 0.49, 0.5, 0.8, 1.5, 3.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _corpus(tmp_path, test_seconds):
    rng = np.random.default_rng(0)
    for s in range(3):
        (tmp_path / "train" / f"s{s}").mkdir(parents=True)
        sf.write(
            tmp_path / "train" / f"s{s}" / "u.wav", 0.1 * rng.standard_normal(8000), 16000, subtype="FLOAT"
        )
    for k, sec in enumerate(test_seconds):
        (tmp_path / "test" / f"t{k}").mkdir(parents=True)
        n = int(round(sec * 16000))
        sf.write(tmp_path / "test" / f"t{k}" / "u.wav", 0.1 * rng.standard_normal(n), 16000, subtype="FLOAT")
    return SpeakerParams(source="folder", train=str(tmp_path / "train"), test=str(tmp_path / "test"),
                         val_speakers=1, cohort_size=0)  # fmt: skip


def _evaluation_embeddings(task, model, ds):
    items = [ds[i] for i in range(len(ds))]
    with torch.no_grad():
        out = task.predict(model, task.collate(items))  # one padded batch of every length, as the engine does
    emb = out["embedding"].numpy()
    return emb[np.argsort(out["index"].numpy())]


def test_evaluation_and_embed_agree_for_every_clip_length(tmp_path):
    task = SpeakerTask(_corpus(tmp_path, SECONDS), seed=0, model=TINY_MODEL)
    ds = task.build_datasets()["test"]
    torch.manual_seed(0)
    model = task.build_model().eval()
    got = _evaluation_embeddings(task, model, ds)
    want = embed(model, ds.sources)
    assert got.shape == want.shape == (len(SECONDS), 8)
    cos = np.sum(got * want, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    for sec, c in zip(SECONDS, cos):
        assert c > 0.9999, f"{sec} s clip: cosine {c:.4f} between evaluation and embed()"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # no padding in either path: a 0.3 s clip (4,800 samples) gives 1 + (4800 - 400) // 160 = 28 frames
    k = SECONDS.index(0.3)
    assert ds[k]["feats"].shape == (80, 28)


def test_clips_below_the_minimum_are_refused_by_both_paths_alike(tmp_path):
    task = SpeakerTask(_corpus(tmp_path, (1.0, 0.05)), seed=0, model=TINY_MODEL)
    ds = task.build_datasets()["test"]
    model = task.build_model().eval()
    short = ds.sources[1]
    assert ds[0]["feats"].shape == (80, 98)
    with pytest.raises(ValueError) as e_eval:
        ds[1]
    with pytest.raises(ValueError) as e_embed:
        embed(model, short)
    assert str(e_eval.value) == str(e_embed.value)
    assert f"{short}: 0.050 s is shorter than min_seconds=0.1" in str(e_eval.value)


def test_evaluation_minimum_follows_params(tmp_path):
    p = _corpus(tmp_path, (1.0, 0.05))
    p.min_eval_seconds = 0.04
    task = SpeakerTask(p, seed=0, model=TINY_MODEL)
    ds = task.build_datasets()["test"]
    torch.manual_seed(0)
    model = task.build_model().eval()
    got = _evaluation_embeddings(task, model, ds)
    np.testing.assert_allclose(got, embed(model, ds.sources, min_seconds=0.04), rtol=1e-4, atol=1e-5)
    assert ds[1]["feats"].shape == (80, 3)  # 800 samples: 1 + (800 - 400) // 160 = 3 frames


def test_embed_of_nothing_is_a_clear_error():
    from sigattn.models.ecapa import ECAPATDNN

    net = ECAPATDNN(channels=16, mfa_channels=24, embed_dim=8, se_channels=4, attention_channels=4)
    with pytest.raises(
        ValueError,
        match=r"embed: expected a path, a 1-D waveform or a non-empty list of them, got an empty list",
    ):
        embed(net, [])


def test_a_clip_shorter_than_one_fbank_frame_is_refused_by_name_whatever_min_seconds():
    from sigattn.models.ecapa import ECAPATDNN
    from sigattn.tasks.speaker.data import UtteranceDataset

    net = ECAPATDNN(channels=16, mfa_channels=24, embed_dim=8, se_channels=4, attention_channels=4)
    tiny = np.zeros(300, dtype=np.float32)  # 300 samples < the 400 of one 25 ms frame at 16 kHz
    with pytest.raises(ValueError, match=r"waveform 0: 0.019 s is shorter than one 25 ms fbank frame"):
        embed(net, [tiny], min_seconds=0)
    with pytest.raises(ValueError, match=r"item 0: 0.019 s is shorter than one 25 ms fbank frame"):
        UtteranceDataset([tiny], min_seconds=0)[0]


def test_long_clips_are_chunked_alike_in_evaluation_and_embed(tmp_path):
    # clips longer than max_eval_seconds: both paths average the embeddings of the same chunks (embed's
    # chunk_seconds rule: 1 s chunks, a tail under a quarter chunk folded into the last one)
    p = _corpus(tmp_path, (0.8, 2.6, 3.0, 3.3))
    p.max_eval_seconds = 1.0
    task = SpeakerTask(p, seed=0, model=TINY_MODEL)
    ds = task.build_datasets()["test"]
    torch.manual_seed(0)
    model = task.build_model().eval()
    got = _evaluation_embeddings(task, model, ds)
    want = embed(model, ds.sources, chunk_seconds=1.0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # independent expectation for the 2.6 s clip (258 frames): chunks [0, 100), [100, 200), [200, 258)
    from sigattn.tasks.speaker.audio import load_audio
    from sigattn.tasks.speaker.data import extract_fbank
    from sigattn.tasks.speaker.inference import embed_features

    f = extract_fbank(load_audio(ds.sources[1]))
    assert f.shape[1] == 258
    by_hand = embed_features(model, [f[:, :100], f[:, 100:200], f[:, 200:]]).mean(axis=0)
    np.testing.assert_allclose(got[1], by_hand, rtol=1e-4, atol=1e-5)
