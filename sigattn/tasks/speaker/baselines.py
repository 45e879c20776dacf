"""A no-learning reference for speaker verification: per-utterance fbank statistics scored by cosine.

Each utterance becomes the mean and the standard deviation over its frames of its log-mel fbank (sigattn's
Kaldi fbank, :func:`~sigattn.tasks.speaker.data.extract_fbank`, the task's features **before** sentence mean
normalisation, which would set the mean half to zero), concatenated: ``2 * n_mels`` numbers (160 for 80 bins).
Trials are scored by cosine, plain or after subtracting the mean vector of the training utterances, and with
adaptive s-norm against a cohort of training utterances. Nothing is trained, so a trained embedding that does
not beat these numbers on the same trials has learned less than the long-term spectrum already tells.

:func:`nolearning_metrics` builds the recipe's :class:`~sigattn.tasks.speaker.task.SpeakerTask` (same training
utterances for the seed, same test trial list, same cohort, same audio loading) and scores all three with
:func:`~sigattn.tasks.speaker.scoring.verification_metrics`, so its numbers sit beside the trained models'.

Example:
    >>> feats = np.array([[1.0, 3.0], [2.0, 2.0]], dtype=np.float32)  # (bins, frames)
    >>> fbank_stats(feats).tolist()
    [2.0, 2.0, 1.0, 0.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .scoring import as_norm, cosine_scores, verification_metrics

__all__ = ["fbank_stats", "fbank_stats_embeddings", "nolearning_metrics", "nolearning_scores"]


def fbank_stats(feats) -> np.ndarray:
    """``(bins, frames)`` features -> ``(2 * bins,)`` float64: the per-bin mean over frames, then the per-bin
    standard deviation over frames (population, ``ddof=0``)."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] < 1:
        raise ValueError(
            f"fbank_stats: expected (bins, frames) features with frames >= 1, got shape {f.shape}"
        )
    return np.concatenate([f.mean(axis=1), f.std(axis=1)])


def fbank_stats_embeddings(features: Sequence) -> np.ndarray:
    """:func:`fbank_stats` of each ``(bins, frames)`` array (numpy or torch) of ``features``: ``(n, 2 * bins)``."""
    rows = [fbank_stats(f.numpy() if hasattr(f, "numpy") else f) for f in features]
    if not rows:
        raise ValueError("fbank_stats_embeddings: no utterances")
    return np.stack(rows)


def _features(dataset) -> list:
    """Every item's ``feats`` of an evaluation dataset (:class:`~sigattn.tasks.speaker.data.UtteranceDataset`)."""
    return [dataset[i]["feats"] for i in range(len(dataset))]


def _train_features(task) -> list:
    """The whole-utterance features of the utterances the task trains on (its ``train`` split's sources)."""
    from .data import UtteranceDataset

    train = task._train_set
    if hasattr(train, "feats"):  # FeatureCropDataset: whole utterances, computed once by build_datasets
        return list(train.feats)
    p = task.p  # CropDataset: the sources themselves (in-memory waveforms or files)
    ds = UtteranceDataset(train.sources, p.sample_rate, p.n_mels, None, min_seconds=0, cache=False, cmn=False,
                          resample=p.resample, truncated=p.truncated)  # fmt: skip
    return _features(ds)


def nolearning_scores(params, seed: int = 0, split: str = "test") -> dict[str, np.ndarray]:
    """Trial labels and no-learning scores of the recipe's ``split`` trials.

    Args:
        params: the recipe's :class:`~sigattn.tasks.speaker.params.SpeakerParams` (``recipe.params``); its
            ``cmn`` is turned off for these features (see the module docstring), nothing else changes.
        seed: the task seed (``trainer.seed``): it picks the validation speakers, hence the training
            utterances, and the cohort.
        split: ``test`` (or ``val``).

    Returns:
        ``labels``; ``plain`` (cosine), ``mean_subtracted`` (cosine after subtracting the mean vector of the
        training utterances) and, when the recipe has a cohort (``cohort_size``), ``asnorm`` (AS-norm of
        ``mean_subtracted`` against the cohort's vectors, top ``asnorm_top_k``, the same mean subtracted).
    """
    from .data import UtteranceDataset
    from .task import SpeakerTask

    p = dataclasses.replace(params, cmn=False)
    task = SpeakerTask(p, seed=seed)
    datasets = task.build_datasets()
    emb = fbank_stats_embeddings(_features(datasets[split]))
    a, b, labels = task._trials[split]
    mean = fbank_stats_embeddings(_train_features(task)).mean(axis=0)
    out = {
        "labels": labels,
        "plain": cosine_scores(emb[a], emb[b]),
        "mean_subtracted": cosine_scores(emb[a], emb[b], mean),
    }
    if task._cohort_sources:
        cohort_ds = UtteranceDataset(task._cohort_sources, p.sample_rate, p.n_mels, None, cache=False,
                                     min_seconds=p.min_eval_seconds, cmn=False, resample=p.resample,
                                     truncated=p.truncated)  # fmt: skip
        cohort = fbank_stats_embeddings(_features(cohort_ds))
        out["asnorm"] = as_norm(out["mean_subtracted"], emb[a], emb[b], cohort, p.asnorm_top_k, mean)
    return out


def nolearning_metrics(params, seed: int = 0, split: str = "test") -> dict[str, dict[str, float]]:
    """:func:`nolearning_scores` scored: ``{"plain" | "mean_subtracted" | "asnorm": verification_metrics}``
    (EER in %, normalised minDCF at p_target 0.01 and 0.05), plus ``trials`` and ``target_trials``."""
    s = nolearning_scores(params, seed, split)
    labels = s.pop("labels")
    out = {k: verification_metrics(v, labels) for k, v in s.items()}
    for m in out.values():
        m |= {"trials": float(len(labels)), "target_trials": float(np.sum(labels))}
    return out
