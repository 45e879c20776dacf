"""The LibriSpeech smoke sets in ../shared/data: manifest sizes, trial counts and one real file's audio."""

import pytest

from sigattn.data_paths import shared_data_dir
from sigattn.tasks.speaker.audio import load_audio
from sigattn.tasks.speaker.data import extract_fbank
from sigattn.tasks.speaker.manifests import all_pair_trials, manifest_from_folder

ROOT = shared_data_dir()
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        ROOT is None or not (ROOT / "speech").is_dir(), reason="../shared/data/speech is absent"
    ),
]


def test_librispeech_smoke_sets():
    test = manifest_from_folder(ROOT / "speech" / "librispeech_test_other")
    assert len(test) == 100 and len({it.speaker for it in test}) == 10
    trials = all_pair_trials(test)
    assert len(trials) == 4950 and sum(t[0] for t in trials) == 450  # data README: 450 same-speaker pairs
    train = manifest_from_folder(ROOT / "speech" / "librispeech_train_clean_100", speaker_from="filename")
    assert len(train) == 251 and len({it.speaker for it in train}) == 251
    assert all(it.path.split("/")[-1].startswith(it.speaker + "-") for it in train)


def test_real_flac_reads_at_16k_and_gives_fbank():
    item = manifest_from_folder(ROOT / "speech" / "librispeech_test_other")[0]
    wave = load_audio(item.path)
    assert 2.0 <= wave.shape[0] / 16000 <= 23.0  # data README: 2.0-22.8 s
    assert 0.0 < float(abs(wave).max()) <= 1.0
    feats = extract_fbank(wave[:32000])
    assert feats.shape == (80, 198)
    assert abs(float(feats.mean(axis=1).max())) < 1e-3  # CMN
