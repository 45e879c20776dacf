"""Models by name for the EEG task, and a compact train/evaluate loop shared by the benchmark.

* ``dbconformer``: :class:`sigattn.models.dbconformer.DBConformer`.
* ``eegnet``: braindecode ``EEGNet`` (Lawhern et al., J. Neural Eng. 15, 2018).
* ``shallow``: braindecode ``ShallowFBCSPNet`` (Schirrmeister et al., Hum. Brain Mapp. 38, 2017).
* ``eegconformer``: braindecode ``EEGConformer`` (Song et al., IEEE TNSRE 31, 2023).
* :func:`csp_lda`: MNE ``CSP`` + scikit-learn LDA (Ramoser et al., IEEE TRE 8, 2000).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODELS = ("dbconformer", "eegnet", "shallow", "eegconformer")


def build_model(
    name: str,
    *,
    n_chans: int,
    n_outputs: int,
    n_times: int,
    sfreq: float,
    ch_names: Sequence[str] | None = None,
    **kwargs,
) -> nn.Module:
    """A fresh model ``(B, C, T) -> logits``; ``kwargs`` go to its constructor.

    Example:
        >>> build_model("dbconformer", n_chans=4, n_outputs=2, n_times=128, sfreq=64)(torch.zeros(1, 4, 128)).shape
        torch.Size([1, 2])
    """
    if name == "dbconformer":
        from sigattn.models.dbconformer import DBConformer

        chs = list(ch_names) if ch_names is not None else None
        return DBConformer(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq, chs_info=chs,
                           **kwargs)  # fmt: skip
    if name not in MODELS:
        raise ValueError(f"unknown EEG model {name!r}; valid: {', '.join(MODELS)}")
    import braindecode.models as bd

    common = dict(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq)
    if name == "eegnet":
        return bd.EEGNet(**common, **kwargs)
    if name == "shallow":
        kw = dict(final_conv_length="auto") | kwargs
        return bd.ShallowFBCSPNet(**common, **kw)
    return bd.EEGConformer(**common, **kwargs)


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


def train_eval(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    *,
    epochs: int = 50,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, object]:
    """Adam + cross-entropy for ``epochs``; the epoch with the best validation accuracy (ties: the later one)
    is restored before predicting the test trials (last epoch when ``val`` is empty).

    Returns ``{"pred", "val_acc", "epochs_run", "train_time_s", "samples_per_s"}``.
    """
    import time

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), torch.from_numpy(np.asarray(y))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state = -1.0, None

    def predict(idx: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return torch.cat([model(Xt[idx[i : i + 256]]).argmax(1) for i in range(0, len(idx), 256)]).numpy()

    t0, seen = time.perf_counter(), 0
    for _ in range(epochs):
        model.train()
        perm = torch.from_numpy(train)[torch.randperm(len(train), generator=g)]
        for i in range(0, len(perm), batch_size):
            b = perm[i : i + batch_size]
            if len(b) < 2:  # BatchNorm needs two items
                continue
            loss = F.cross_entropy(model(Xt[b]), yt[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(b)
        if len(val):
            acc = float((predict(val) == y[val]).mean())
            if acc >= best:
                best, best_state = acc, copy.deepcopy(model.state_dict())
    elapsed = time.perf_counter() - t0
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"pred": predict(test), "val_acc": best, "epochs_run": epochs, "train_time_s": elapsed,
            "samples_per_s": seen / max(elapsed, 1e-9)}  # fmt: skip
