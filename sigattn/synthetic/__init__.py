from .speakers import SpeakerParams, SyntheticSpeakers, make_speaker_corpus  # noqa: F401
