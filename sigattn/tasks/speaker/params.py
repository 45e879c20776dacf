"""The ``params`` section of a speaker-verification recipe (``task: speaker``), as a typed dataclass.

Data, augmentation, loss and protocol settings only: the embedding network is the recipe's ``model:`` section
(``model: {name: ecapa, channels: 1024, attention: se}``; see :class:`~sigattn.tasks.speaker.task.SpeakerTask`).
Desplanques et al., "ECAPA-TDNN", Interspeech 2020 (arXiv 2005.07143); defaults follow the paper's AAM
softmax (margin 0.2, scale 30).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SpeakerParams"]


@dataclass
class SpeakerParams:
    """The ``params`` section of a speaker-verification recipe.

    Attributes:
        source: ``synthetic``, ``folder`` (``<speaker>/.../<utt>.wav``), ``csv`` (``path,speaker[,utt]``) or
            ``kaldi`` (a folder with ``wav.scp`` and ``utt2spk``).
        train / test: manifests of that kind (paths may use ``data:``); speaker_from: ``dir`` or ``filename``.
        trials: a VoxCeleb trial list (paths relative to ``trials_root`` or the list); empty = all test pairs.
        val_speakers: training speakers held out for validation (single-utterance speakers are split in two).
        val_utts_per_speaker: cap on each validation speaker's utterances (0 = all; all pairs are scored).
        cohort_size: training utterances embedded for the score mean and AS-norm (0 = no cohort: raw cosine).
        asnorm_top_k: AS-norm top-k (clipped to the cohort size).
        crop_seconds: training crop; short: ``repeat``/``pad``/``reject`` clips shorter than a crop.
        sample_rate: model rate; resample: resample files at other rates (``false``: reject them, naming the
            file).
        truncated: a file holding fewer frames than its header declares is an error naming the file
            (``error``, default) or a warning saying how many frames were lost, with the frames present used
            (``warn``).
        cmn: sentence mean normalisation of the fbank features (``false`` only for channel-free data such as
            the synthetic speakers, whose identity lives largely in the long-term spectrum).
        epoch_size: crops per epoch (0 = one per training utterance).
        max_eval_seconds: a validation, test or cohort file longer than this is embedded in chunks of this
            length whose embeddings are averaged, as ``embed(chunk_seconds=...)`` does (0: whole files).
        min_eval_seconds: a validation, test or cohort clip shorter than this is an error naming the file
            (the same rule as ``embed(min_seconds=...)``); accepted clips are never padded or tiled.
        noise_dir / rir_dir / aug_prob / snr_range: MUSAN-style noise and RIR reverberation.
        speed_perturb: add 0.9x/1.1x copies of every training speaker as new speakers.
        spec_augment: frequency/time masking of training features.
        n_mels: fbank bins (the embedding network's input size follows from it).
        margin, scale, margin_warmup (epochs ``[start, end]``): AAM softmax; margin 0.5 and long crops give
            large-margin fine-tuning from ``init_checkpoint`` (an engine checkpoint or a state_dict).
    """

    source: str = "synthetic"
    train: str = ""
    train_speaker_from: str = "dir"
    test: str = ""
    test_speaker_from: str = "dir"
    trials: str = ""
    trials_root: str = ""
    val_speakers: int = 10
    val_utts_per_speaker: int = 0
    cohort_size: int = 200
    asnorm_top_k: int = 100
    synth_train_speakers: int = 64
    synth_test_speakers: int = 20
    synth_utts: int = 4
    synth_seconds: float = 2.5
    synth_seed: int = 0
    sample_rate: int = 16000
    resample: bool = True
    truncated: str = "error"
    n_mels: int = 80
    cmn: bool = True
    crop_seconds: float = 2.0
    short: str = "repeat"
    epoch_size: int = 0
    max_eval_seconds: float = 30.0
    min_eval_seconds: float = 0.1
    noise_dir: str = ""
    rir_dir: str = ""
    aug_prob: float = 0.6
    snr_range: list[float] = field(default_factory=lambda: [0.0, 15.0])
    speed_perturb: bool = False
    spec_augment: bool = False
    margin: float = 0.2
    scale: float = 30.0
    margin_warmup: list[float] = field(default_factory=lambda: [0.0, 0.0])
    init_checkpoint: str = ""

    def __post_init__(self) -> None:
        if self.source not in ("synthetic", "folder", "csv", "kaldi"):
            raise ValueError(f"params.source must be synthetic, folder, csv or kaldi, got {self.source!r}")
        if self.short not in ("repeat", "pad", "reject"):
            raise ValueError(f"params.short must be repeat, pad or reject, got {self.short!r}")
        if self.truncated not in ("error", "warn"):
            raise ValueError(f"params.truncated must be 'error' or 'warn', got {self.truncated!r}")
        if self.source != "synthetic" and not (self.train and (self.test or self.trials)):
            raise ValueError(
                f"params.source={self.source!r} needs params.train and params.test (or params.trials)"
            )
