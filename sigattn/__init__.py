"""sigattn: channel attention for multi-channel signals (audio, EEG, multivariate time series)."""

__version__ = "0.1.0"
