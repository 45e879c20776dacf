"""Truncated audio files (issue #12, item 2): a file holding fewer frames than its header declares is an
error naming the file and what was lost, or, with ``truncated="warn"``, a warning saying the same."""

import warnings

import numpy as np
import pytest
import soundfile as sf

from sigattn.tasks.speaker.audio import load_audio


def _cut(path, keep_bytes):
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])


@pytest.fixture
def half_wav(tmp_path):
    """1 s of 16-bit mono noise at 16 kHz (44-byte header + 32,000 data bytes), cut after 8,000 frames."""
    wave = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    path = tmp_path / "half.wav"
    sf.write(path, wave, 16000, subtype="PCM_16")
    assert path.stat().st_size == 44 + 32000  # a canonical header: data starts at byte 44
    _cut(path, 44 + 16000)
    return path, wave


def test_truncated_wav_is_an_error_naming_the_file_and_the_loss(half_wav):
    path, _ = half_wav
    with pytest.raises(ValueError) as e:
        load_audio(path)
    msg = str(e.value)
    assert str(path) in msg
    # hand-worked: the header declares 32,000 bytes / 2 = 16,000 frames; 16,000 bytes = 8,000 frames remain
    assert "truncated: header declares 16000 frames (1.000 s), file holds 8000 (0.500 s)" in msg
    assert "\n" not in msg


def test_truncated_wav_with_warn_returns_what_is_there(half_wav):
    path, wave = half_wav
    with pytest.warns(UserWarning, match=r"half.wav: truncated: header declares 16000 frames") as rec:
        out = load_audio(path, truncated="warn")
    assert "8000 frames (0.500 s) lost" in str(rec[0].message)
    assert out.shape == (8000,)
    np.testing.assert_allclose(out, wave[:8000], atol=1 / 32768)  # 16-bit quantisation


def test_truncated_option_is_checked(half_wav):
    path, _ = half_wav
    with pytest.raises(ValueError, match=r"truncated must be 'error' or 'warn', got 'ignore'"):
        load_audio(path, truncated="ignore")


def test_odd_partial_frame_counts_as_truncated(tmp_path):
    # stereo 16-bit: 4 bytes a frame; cutting 3 bytes into the last frame leaves 99 whole frames of 100
    path = tmp_path / "stereo.wav"
    sf.write(path, np.zeros((100, 2), dtype=np.float32), 16000, subtype="PCM_16")
    _cut(path, 44 + 400 - 3)
    with pytest.raises(
        ValueError, match=r"stereo.wav: truncated: header declares 100 frames \(0.006 s\), file holds 99"
    ):
        load_audio(path)


def test_complete_files_load_without_warning(tmp_path):
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "full.wav", wave, 16000, subtype="FLOAT")
    sf.write(tmp_path / "full.flac", wave, 16000, subtype="PCM_16")
    # a chunk after the data chunk (here a LIST chunk) is not a truncation
    sf.write(tmp_path / "tagged.wav", wave, 16000, subtype="PCM_16")
    with sf.SoundFile(tmp_path / "tagged.wav", "r+") as f:
        f.title = "a title"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_audio(tmp_path / "full.wav"), wave)
        assert load_audio(tmp_path / "full.flac").shape == (16000,)
        assert load_audio(tmp_path / "tagged.wav").shape == (16000,)


def test_speaker_task_passes_the_truncated_policy_to_its_loaders(tmp_path):
    from sigattn.tasks.speaker.task import SpeakerParams, SpeakerTask

    rng = np.random.default_rng(3)
    for s in range(3):
        (tmp_path / "train" / f"s{s}").mkdir(parents=True)
        sf.write(tmp_path / "train" / f"s{s}" / "u.wav", 0.1 * rng.standard_normal(8000), 16000)
    (tmp_path / "test" / "t0").mkdir(parents=True)
    cut = tmp_path / "test" / "t0" / "cut.wav"
    sf.write(cut, 0.1 * rng.standard_normal(8000), 16000, subtype="PCM_16")
    _cut(cut, 44 + 8000)  # 4,000 of 8,000 frames remain
    common = dict(source="folder", train=str(tmp_path / "train"), test=str(tmp_path / "test"), val_speakers=1,
                  cohort_size=0)  # fmt: skip
    ds = SpeakerTask(SpeakerParams(**common)).build_datasets()
    with pytest.raises(ValueError, match=r"cut.wav: truncated: header declares 8000 frames \(0.500 s\)"):
        ds["test"][0]
    ds = SpeakerTask(SpeakerParams(truncated="warn", **common)).build_datasets()
    with pytest.warns(UserWarning, match=r"cut.wav: truncated: .* 4000 frames \(0.250 s\) lost"):
        item = ds["test"][0]
    assert item["feats"].shape == (80, 23)  # 4,000 samples: 1 + (4000 - 400) // 160 = 23 frames
    with pytest.raises(ValueError, match=r"params.truncated must be 'error' or 'warn', got 'skip'"):
        SpeakerParams(truncated="skip", **common)


def test_truncated_flac_is_an_error_naming_the_file(tmp_path):
    wave = (0.1 * np.random.default_rng(2).standard_normal(32000)).astype(np.float32)
    path = tmp_path / "half.flac"
    sf.write(path, wave, 16000, subtype="PCM_16")
    _cut(path, path.stat().st_size // 2)
    with pytest.raises(ValueError, match=r"half.flac: truncated: header declares 32000 frames \(2.000 s\)"):
        load_audio(path)
    with pytest.warns(UserWarning, match=r"half.flac: truncated: header declares 32000 frames") as rec:
        out = load_audio(path, truncated="warn")
    n = out.shape[0]  # what libsndfile decodes of the first half (its FLAC reader stops at a block boundary)
    assert 0 < n < 16000
    np.testing.assert_allclose(out, wave[:n], atol=1 / 32768)
    assert f"decoding stops after {n} ({n / 16000:.3f} s)" in str(rec[0].message)
    assert f"{32000 - n} frames ({(32000 - n) / 16000:.3f} s) lost" in str(rec[0].message)
