"""SpeakerTask methods called directly (as the engine does) and batched/chunked embedding extraction."""

import numpy as np
import pytest
import soundfile as sf
import torch

from sigattn.tasks.speaker.inference import embed, embed_features
from sigattn.tasks.speaker.task import SpeakerParams, SpeakerTask

# the embedding network of these tests: a tiny ECAPA-TDNN (the recipe's model section)
TINY_MODEL = dict(channels=16, mfa_channels=24, embed_dim=8, attention_channels=4, se_channels=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def tiny_params(**kw):
    base = dict(synth_train_speakers=6, synth_test_speakers=3, val_speakers=2, synth_utts=2, synth_seconds=0.6,
                crop_seconds=0.3, cohort_size=4, asnorm_top_k=2)  # fmt: skip
    return SpeakerParams(**(base | kw))


def test_task_methods_end_to_end(tmp_path):
    task = SpeakerTask(tiny_params(margin_warmup=[0.0, 2.0]), seed=0, model=TINY_MODEL)
    ds = task.build_datasets()
    assert len(ds["train"]) == 12 and len(ds["val"]) == 4 and len(ds["test"]) == 6
    assert task.n_classes == 6
    model = task.build_model()
    batch = task.collate([ds["train"][i] for i in range(4)])
    assert batch["feats"].shape == (4, 80, 30) and batch["labels"].dtype == torch.int64
    loss, logs = task.loss(model, batch, epoch=1, step=0)
    assert loss.ndim == 0 and torch.isfinite(loss) and logs["margin"] == pytest.approx(0.1)
    loss.backward()
    model.eval()
    for split in ("val", "test"):
        items = [ds[split][i] for i in range(len(ds[split]))]
        eb = task.collate(items)
        assert eb["lengths"].tolist() == [it["feats"].shape[1] for it in items]
        with torch.no_grad():
            out = task.predict(model, eb)
        m = task.metrics(out, split)
        n = len(items)
        assert m["trials"] == n * (n - 1) / 2 and 0 <= m["eer"] <= 100 and "asnorm_eer" in m
    paths = task.plots(model, out, "test", tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    checks = task.demo_checks({"test/eer": 3.0})
    assert list(checks.values()) == [True]
    assert list(task.demo_checks({"test/eer": 7.0}).values()) == [False]
    task.p.source = (
        "folder"  # real speech: the synthetic demo's EER target does not apply (left out of reports)
    )
    assert list(task.demo_checks({"test/eer": 7.0}).values()) == [None]
    assert task.export_model(model) is model.embedding


def test_real_source_needs_paths():
    with pytest.raises(ValueError, match="needs params.train"):
        SpeakerParams(source="folder")
    with pytest.raises(TypeError, match="channels"):  # model settings live in the model section now
        SpeakerParams(channels=1024)


def test_folder_source_with_trials_and_single_utterance_val(tmp_path):
    rng = np.random.default_rng(0)
    for s in range(4):  # one utterance per training speaker, like the LibriSpeech smoke set
        (tmp_path / "train" / f"s{s}").mkdir(parents=True)
        sf.write(tmp_path / "train" / f"s{s}" / "u.wav", 0.1 * rng.standard_normal(8000), 16000)
    for s in range(2):
        (tmp_path / "test" / f"t{s}").mkdir(parents=True)
        for u in range(2):
            sf.write(tmp_path / "test" / f"t{s}" / f"{u}.wav", 0.1 * rng.standard_normal(6000), 16000)
    (tmp_path / "trials.txt").write_text("1 t0/0.wav t0/1.wav\n0 t0/0.wav t1/1.wav\n")
    p = SpeakerParams(source="folder", train=str(tmp_path / "train"), trials=str(tmp_path / "trials.txt"),
                      trials_root=str(tmp_path / "test"), val_speakers=1, cohort_size=0)  # fmt: skip
    task = SpeakerTask(p, model=TINY_MODEL)
    ds = task.build_datasets()
    assert len(ds["val"]) == 2  # the held-out speaker's single utterance, split in two halves
    assert len(ds["test"]) == 3  # the distinct files named by the trials
    a, b, labels = task._trials["test"]
    assert labels.tolist() == [1, 0]


def test_embed_batched_equals_single_and_chunks(tmp_path):
    from sigattn.models.ecapa import ECAPATDNN

    torch.manual_seed(0)
    net = ECAPATDNN(channels=16, mfa_channels=24, embed_dim=8, se_channels=4, attention_channels=4).eval()
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 7000, 3000)]
    together = embed(net, waves, batch_size=3)
    alone = np.concatenate([embed(net, w) for w in waves])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # chunking: 2.5 s at 1 s chunks = the mean of the chunk embeddings computed by hand
    from sigattn.tasks.speaker.data import extract_fbank

    long = (0.1 * rng.standard_normal(40000)).astype(np.float32)
    f = extract_fbank(long)
    parts = [f[:, :100], f[:, 100:200], f[:, 200:]]
    want = embed_features(net, parts).mean(axis=0)
    np.testing.assert_allclose(embed(net, long, chunk_seconds=1.0)[0], want, atol=1e-5)
    sf.write(tmp_path / "a8k.wav", waves[0][:8000], 8000)
    with pytest.raises(ValueError, match="a8k.wav: sample rate 8000"):
        embed(net, tmp_path / "a8k.wav", resample=False)
    with pytest.raises(ValueError, match="waveform 0: 0.010 s is shorter"):
        embed(net, [np.zeros(160, dtype=np.float32)])


def test_crop_dataset_with_waveform_augmentation_is_reproducible():
    from sigattn.tasks.speaker.augment import AddNoise
    from sigattn.tasks.speaker.data import CropDataset

    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (12000, 3000)]
    noise = [rng.standard_normal(5000).astype(np.float32)]
    ds = CropDataset(waves, [0, 1], crop_seconds=0.5, augment=AddNoise(noise, (5.0, 10.0)), seed=1)
    f0, y0 = ds[0]
    assert f0.shape == (80, 48) and y0 == 0
    torch.testing.assert_close(ds[0][0], f0)  # same epoch and index: same crop and noise
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], f0)
    assert ds[1][0].shape == (80, 48)  # 3000 samples < 8000: repeated to the crop length


def test_speed_perturbation_adds_speakers():
    task = SpeakerTask(tiny_params(speed_perturb=True), seed=0, model=TINY_MODEL)
    ds = task.build_datasets()
    assert task.n_classes == 18 and len(ds["train"]) == 36
    labels = {ds["train"][i][1] for i in range(len(ds["train"]))}
    assert labels == set(range(18))


def test_init_checkpoint_for_large_margin_finetuning(tmp_path):
    task = SpeakerTask(tiny_params(), seed=0, model=TINY_MODEL)
    task.build_datasets()
    trained = task.build_model()
    torch.save(
        {"weights": trained.state_dict(), "epoch": 3}, tmp_path / "best.ckpt"
    )  # engine best.ckpt layout
    lm_params = tiny_params(margin=0.5, crop_seconds=0.5, init_checkpoint=str(tmp_path / "best.ckpt"))
    lm = SpeakerTask(lm_params, model=TINY_MODEL)
    lm.build_datasets()
    model = lm.build_model()
    for k, v in trained.embedding.state_dict().items():
        torch.testing.assert_close(model.embedding.state_dict()[k], v)
    assert model.head.margin == 0.5


def test_task_rejects_other_sample_rates_when_asked(tmp_path):
    rng = np.random.default_rng(0)
    for s in range(3):
        (tmp_path / f"s{s}").mkdir()
        sf.write(tmp_path / f"s{s}" / "u.wav", 0.1 * rng.standard_normal(4000), 8000)
    common = dict(source="folder", train=str(tmp_path), test=str(tmp_path), val_speakers=1, cohort_size=0)
    with pytest.raises(ValueError, match=r"u.wav: sample rate 8000 Hz, expected 16000 Hz"):
        SpeakerTask(SpeakerParams(resample=False, **common)).build_datasets()
    ds = SpeakerTask(SpeakerParams(**common)).build_datasets()  # resampled: 0.5 s at 8 kHz -> 8000 samples
    assert ds["test"][0]["feats"].shape == (80, 48)


def test_cohort_is_embedded_in_eval_mode_whatever_the_model_mode():
    # the engine hands metrics()/plots() a model that may be in train mode: the cohort embeddings (score
    # mean, AS-norm) must still use BatchNorm running statistics, and must not update them
    from sigattn.tasks.speaker.data import UtteranceDataset

    task = SpeakerTask(tiny_params(), seed=0, model=TINY_MODEL)
    ds = task.build_datasets()
    model = task.build_model()
    model.train()
    with torch.no_grad():  # move the BatchNorm running statistics away from their initial values
        batch = task.collate([ds["train"][i] for i in range(4)])
        model(batch["feats"], None, batch["labels"])
    model.eval()
    items = [ds["val"][i] for i in range(len(ds["val"]))]
    with torch.no_grad():
        out = task.predict(model, task.collate(items))
        # reference: each cohort utterance embedded alone, in eval mode
        p = task.p
        cds = UtteranceDataset(task._cohort_sources, p.sample_rate, p.n_mels, p.max_eval_seconds, cmn=p.cmn)
        cohort = torch.cat([model(cds[i]["feats"][None]) for i in range(len(cds))]).double().numpy()
    emb = out["embedding"].double().numpy() - cohort.mean(0)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    a, b, _ = task._trials["val"]
    ref = np.sum(emb[a] * emb[b], axis=1)

    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = task.scores(out, "val")
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed by scoring"
    np.testing.assert_allclose(got["cosine"], ref, rtol=0, atol=1e-5)


def test_short_pad_pads_training_crops_with_silence():
    # short='pad' is documented as zeros at the end: the frames past a short clip are silence (constant
    # log-energy floor in every band with cmn off), not a repetition of the clip
    p = tiny_params(synth_seconds=0.5, crop_seconds=1.0, short="pad", cmn=False)
    task = SpeakerTask(p, seed=0, model=TINY_MODEL)
    ds = task.build_datasets()
    feats, _ = ds["train"][0]
    assert feats.shape[0] == 80 and feats.shape[1] >= 90  # about 1 s of 10 ms frames
    tail = feats[:, 60:]  # the clip is 0.5 s (~48 frames); everything from frame 60 on is padding
    assert torch.equal(tail, tail[:, :1].expand_as(tail))
    head = feats[:, :40]
    assert head.std(dim=1).mean() > 0.1  # the speech part is not silence
