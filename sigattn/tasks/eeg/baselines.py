"""The EEG baselines: braindecode networks registered as ``eeg`` models, and MNE CSP + LDA.

The networks are models of :mod:`sigattn.models.registry` like DBConformer (imported on first use), so a
recipe names one with ``model.name`` and sets its constructor arguments in the same ``model:`` section; they
train through the one Trainer with the same data, split and loop:

* ``eegnet``: braindecode ``EEGNet`` (Lawhern et al., J. Neural Eng. 15, 2018).
* ``shallow``: braindecode ``ShallowFBCSPNet`` (Schirrmeister et al., Hum. Brain Mapp. 38, 2017).
* ``eegconformer``: braindecode ``EEGConformer`` (Song et al., IEEE TNSRE 31, 2023).

:func:`csp_lda` (Ramoser et al., IEEE TRE 8, 2000) is not a network: it fits in closed form on the same
aligned trials (see ``benchmarks/eeg.py``).

Example:
    >>> from sigattn.models.registry import model_names
    >>> model_names("eeg")
    ['dbconformer', 'eegconformer', 'eegnet', 'shallow']
"""

from __future__ import annotations

import numpy as np

from sigattn.models.registry import MODELS, register_model

__all__ = ["BRAINDECODE_MODELS", "csp_lda"]

#: recipe name -> braindecode class (``braindecode.models``), imported when a recipe names it
BRAINDECODE_MODELS = {
    "eegnet": "braindecode.models:EEGNet",
    "shallow": "braindecode.models:ShallowFBCSPNet",
    "eegconformer": "braindecode.models:EEGConformer",
}

for _name, _target in BRAINDECODE_MODELS.items():
    if _name not in MODELS.get("eeg", {}):  # once per process, also if this module is reloaded
        register_model("eeg", _name, _target)


def csp_lda(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, n_components: int = 6
) -> np.ndarray:
    """Predicted labels of MNE CSP (log-variance features) + LDA trained on ``X_train``."""
    from mne.decoding import CSP
    from mne.utils import use_log_level
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(
        CSP(n_components=n_components, log=True, reg="ledoit_wolf"), LinearDiscriminantAnalysis()
    )
    with use_log_level("error"):
        clf.fit(X_train.astype(np.float64), y_train)
        return clf.predict(X_test.astype(np.float64))
