"""``sigattn.tasks.speaker.data`` keeps its public names after the split (#13): the manifest and trial-list
readers moved to ``manifests`` and ``load_audio`` lives in ``audio``; ``data`` re-exports the same objects."""

from sigattn.tasks.speaker import audio, data, manifests


def test_data_re_exports_the_moved_names_as_the_same_objects():
    for name in manifests.__all__:
        assert name in data.__all__, name
        assert getattr(data, name) is getattr(manifests, name), name
    assert data.load_audio is audio.load_audio


def test_every_name_in_data_all_resolves():
    ns: dict = {}
    exec("from sigattn.tasks.speaker.data import *", ns)
    assert set(data.__all__) <= set(ns)
