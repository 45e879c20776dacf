"""Manifests, trial lists and audio loading: formats, line-numbered errors, bad audio, short clips, rates."""

import numpy as np
import pytest
import soundfile as sf

from sigattn.tasks.speaker.audio import load_audio
from sigattn.tasks.speaker.data import crop_or_pad
from sigattn.tasks.speaker.manifests import (
    all_pair_trials,
    manifest_from_csv,
    manifest_from_folder,
    manifest_from_kaldi,
    read_trials,
    write_manifest_csv,
)


@pytest.fixture
def vox(tmp_path):
    rng = np.random.default_rng(0)
    for spk in ("id001", "id002"):
        for sess in ("s1", "s2"):
            (tmp_path / spk / sess).mkdir(parents=True)
            sf.write(tmp_path / spk / sess / "00001.wav", 0.1 * rng.standard_normal(4000), 16000)
    return tmp_path


def test_folder_csv_kaldi_manifests_agree(vox, tmp_path):
    items = manifest_from_folder(vox)
    assert [it.speaker for it in items] == ["id001"] * 2 + ["id002"] * 2
    assert items[0].utt == "id001/s1/00001"
    csv_items = manifest_from_csv(write_manifest_csv(items, tmp_path / "m.csv"))
    assert csv_items == items
    (tmp_path / "kaldi").mkdir()
    (tmp_path / "kaldi" / "wav.scp").write_text("".join(f"{it.utt} {it.path}\n" for it in items))
    (tmp_path / "kaldi" / "utt2spk").write_text("".join(f"{it.utt} {it.speaker}\n" for it in items))
    assert manifest_from_kaldi(tmp_path / "kaldi" / "wav.scp", tmp_path / "kaldi" / "utt2spk") == items


def test_manifest_errors_name_file_and_line(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 a.wav\nu2\n")
    (tmp_path / "utt2spk").write_text("u1 s1\n")
    with pytest.raises(ValueError, match=r"wav.scp:2"):
        manifest_from_kaldi(tmp_path / "wav.scp", tmp_path / "utt2spk")
    (tmp_path / "wav.scp").write_text("u1 a.wav\nu2 b.wav\n")
    with pytest.raises(ValueError, match=r"wav.scp:2: utterance 'u2' has no speaker"):
        manifest_from_kaldi(tmp_path / "wav.scp", tmp_path / "utt2spk")
    (tmp_path / "wav.scp").write_text("u1 sox a.wav -t wav - |\n")
    with pytest.raises(ValueError, match="piped commands"):
        manifest_from_kaldi(tmp_path / "wav.scp", tmp_path / "utt2spk")
    (tmp_path / "bad.csv").write_text("file,spk\nx.wav,1\n")
    with pytest.raises(ValueError, match=r"bad.csv:1: header"):
        manifest_from_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="no audio files"):
        manifest_from_folder(tmp_path)


def test_trials_report_missing_files_with_line_numbers(vox):
    (vox / "trials.txt").write_text(
        "1 id001/s1/00001.wav id001/s2/00001.wav\n"
        "0 id001/s1/00001.wav id009/s1/00001.wav\n"
        "\n"
        "0 id404/x.wav id002/s1/00001.wav\n"
    )
    with pytest.raises(FileNotFoundError) as e:
        read_trials(vox / "trials.txt")
    msg = str(e.value)
    assert (
        "line 2:" in msg and "id009" in msg and "line 4:" in msg and "id404" in msg and "line 1:" not in msg
    )
    trials = read_trials(vox / "trials.txt", check_files=False)
    assert [t[0] for t in trials] == [1, 0, 0]
    (vox / "bad.txt").write_text("1 a.wav b.wav\nyes a.wav b.wav\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        read_trials(vox / "bad.txt", check_files=False)


def test_all_pair_trials_count(vox):
    items = manifest_from_folder(vox)
    trials = all_pair_trials(items)
    assert len(trials) == 6 and sum(t[0] for t in trials) == 2


def test_load_audio_errors_name_the_file(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(ValueError, match="corrupt.wav"):
        load_audio(bad)
    with pytest.raises(FileNotFoundError, match="nothere.wav"):
        load_audio(tmp_path / "nothere.wav")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 16000)
    with pytest.raises(ValueError, match="empty.wav has no samples"):
        load_audio(empty)


def test_sample_rate_mismatch_resampled_or_rejected(tmp_path):
    from scipy.signal import resample_poly

    t = np.arange(8000) / 8000
    w = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "a8k.wav", np.stack([w, w], axis=1), 8000, subtype="FLOAT")  # stereo, 8 kHz
    out = load_audio(tmp_path / "a8k.wav", 16000)
    assert out.shape == (16000,) and out.dtype == np.float32
    np.testing.assert_allclose(out, resample_poly(w, 2, 1), atol=1e-5)
    with pytest.raises(ValueError, match=r"a8k.wav: sample rate 8000 Hz, expected 16000 Hz"):
        load_audio(tmp_path / "a8k.wav", 16000, resample=False)


def test_short_clip_policies():
    w = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(w, 8, short="pad"), [0, 1, 2, 3, 4, 0, 0, 0])
    np.testing.assert_array_equal(crop_or_pad(w, 8, short="repeat"), [0, 1, 2, 3, 4, 0, 1, 2])
    with pytest.raises(ValueError, match="clip.wav: 5 samples, shorter than the 8"):
        crop_or_pad(w, 8, short="reject", name="clip.wav")
    np.testing.assert_array_equal(crop_or_pad(w, 3), [1, 2, 3])  # centred without a generator
    c = crop_or_pad(np.arange(100), 10, np.random.default_rng(0))
    assert np.array_equal(c, np.arange(c[0], c[0] + 10))


def test_kaldi_errors_name_the_line_of_wav_scp(tmp_path):
    # errors name the list file's line; blank lines count as lines in an editor
    scp, u2s = tmp_path / "wav.scp", tmp_path / "utt2spk"
    scp.write_text("a a.wav\n\nb b.wav |\n")
    u2s.write_text("a s1\nb s2\n")
    with pytest.raises(ValueError, match=r"wav.scp:3: piped commands"):
        manifest_from_kaldi(scp, u2s)
    scp.write_text("\n\na a.wav\nc c.wav\n")
    with pytest.raises(ValueError, match=r"wav.scp:4: utterance 'c' has no speaker"):
        manifest_from_kaldi(scp, u2s)


def test_crop_dataset_rejects_short_clips_up_front(tmp_path):
    from sigattn.tasks.speaker.data import CropDataset

    sf.write(tmp_path / "long.wav", np.zeros(20000, dtype=np.float32), 16000)
    sf.write(tmp_path / "short8k.wav", np.zeros(7000, dtype=np.float32), 8000)  # 14,000 samples at 16 kHz
    sf.write(tmp_path / "ok8k.wav", np.zeros(8000, dtype=np.float32), 8000)  # exactly 16,000 at 16 kHz
    files = [str(tmp_path / n) for n in ("long.wav", "ok8k.wav", "short8k.wav")]
    with pytest.raises(
        ValueError, match=r"1 training clips are shorter .* e\.g\. .*short8k\.wav \(14000 samples\)"
    ):
        CropDataset(files, [0, 1, 2], crop_seconds=1.0, short="reject")  # at construction, nothing drawn yet
    CropDataset(files[:2], [0, 1], crop_seconds=1.0, short="reject")  # long enough after resampling
    CropDataset(files, [0, 1, 2], crop_seconds=1.0, short="repeat")  # other policies do not read headers
    with pytest.raises(ValueError, match=r"2 training clips .* e\.g\. source 0 \(100 samples\)"):
        CropDataset(
            [np.zeros(100), np.zeros(16000), np.zeros(5)], [0, 1, 2], crop_seconds=1.0, short="reject"
        )
    with pytest.raises(FileNotFoundError, match="gone.wav"):
        CropDataset([str(tmp_path / "gone.wav")], [0], short="reject")
