from .motor_imagery import MotorImageryData, make_motor_imagery  # noqa: F401
from .multivariate import ClusteredSeries, make_clustered_series  # noqa: F401
from .speakers import SyntheticSpeakers, VoiceParams, make_speaker_corpus  # noqa: F401
