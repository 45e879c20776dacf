"""The speaker-verification ``Task``: ECAPA-TDNN trained with AAM softmax, scored with cosine/AS-norm.

Protocol: training crops of ``crop_seconds`` from the training speakers; validation (model selection) on
``val_speakers`` speakers held out of the training pool, scored on all pairs of their utterances; test on
a trial list (VoxCeleb format) or on all pairs of a disjoint test set. Scores are cosine after subtracting
the mean embedding of a cohort of training utterances; with a cohort, adaptive s-norm is reported too.
Metrics: EER (%) and normalised minDCF at p_target 0.01 and 0.05 (c_miss = c_fa = 1).

Model: the recipe's ``model:`` section names a ``speaker`` model of :mod:`sigattn.models.registry` (``ecapa``,
the paper layout, by default; ``speechbrain``, SpeechBrain's layout) and sets its constructor's arguments, e.g.
``model: {name: ecapa, channels: 1024, attention: eca}``. The input size (``in_channels`` / ``input_size``) is
the datasets' fbank bins (``params.n_mels``) and the AAM head's classes the training speakers: not recipe keys.

Desplanques et al., "ECAPA-TDNN", Interspeech 2020 (arXiv 2005.07143).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sigattn.data_paths import resolve_data_path
from sigattn.errors import DataError
from sigattn.models.registry import ModelSpec, create_model, model_class, model_spec
from sigattn.utils import unwrap

from .data import CropDataset, FeatureCropDataset, UtteranceDataset
from .inference import embed_padded_batch
from .loss import margin_schedule
from .manifests import (
    Item,
    all_pair_trials,
    manifest_from_csv,
    manifest_from_folder,
    manifest_from_kaldi,
    read_trials,
)
from .model import SpeakerModel
from .params import SpeakerParams
from .scoring import as_norm, cosine_scores, plot_det, plot_score_histogram, verification_metrics

__all__ = ["SpeakerTask"]

log = logging.getLogger(__name__)


def _manifest(kind: str, path: str, speaker_from: str) -> list[Item]:
    p = resolve_data_path(path)
    if kind == "folder":
        return manifest_from_folder(p, speaker_from)
    if kind == "csv":
        return manifest_from_csv(p)
    return manifest_from_kaldi(p / "wav.scp", p / "utt2spk")


def _input_argument(cls: type, names: tuple[str, ...]) -> str:
    """The name ``cls`` gives its input size: the first of ``names`` its constructor takes."""
    params = inspect.signature(cls).parameters
    for n in names:
        if n in params:
            return n
    raise TypeError(f"speaker model {cls.__name__} takes none of {', '.join(names)} (its input size)")


def _embedding_size(net: nn.Module, n_feats: int) -> int:
    """The embedding size ``net`` reports (``embed_dim``), else that of one eval-mode forward pass."""
    size = getattr(net, "embed_dim", None)
    if isinstance(size, int):
        return size
    was_training = net.training
    net.eval()  # BatchNorm running statistics neither used from nor written by this probe
    try:
        with torch.no_grad():
            size = int(net(torch.zeros(1, n_feats, 64)).shape[-1])
    finally:
        net.train(was_training)
    return size


class SpeakerTask:
    """Speaker verification with ECAPA-TDNN (see the module docstring for the protocol)."""

    name: ClassVar[str] = "speaker"
    Params: ClassVar[type] = SpeakerParams
    monitor: ClassVar[str] = "eer"
    monitor_mode: ClassVar[str] = "min"
    dynamic_axes: ClassVar[dict] = {"feats": {0: "batch", 2: "frames"}, "embedding": {0: "batch"}}

    # The recipe's model section: model.name and the constructor's arguments, except the input size, which
    # the features decide (ECAPATDNN calls it in_channels, SpeechBrainECAPA input_size).
    model_domain: ClassVar[str] = "speaker"
    default_model: ClassVar[str] = "ecapa"
    model_inputs: ClassVar[tuple[str, ...]] = ("in_channels", "input_size")
    # Old params.<key> -> model.<key> (read with one FutureWarning), per model where the layouts differ:
    # params.sb_channels (the SpeechBrain layout's widths) is its constructor's ``channels``; params.embed_dim is
    # the SpeechBrain layout's ``lin_neurons``; params.mfa_channels has no counterpart there (its MFA width is
    # the last entry of ``channels``) and is refused naming the key. "model" comes first: it names the model.
    moved_to_model: ClassVar[dict[str, str | dict]] = {
        "model": "name",
        "channels": "channels",
        "mfa_channels": {"speechbrain": None, "*": "mfa_channels"},
        "embed_dim": {"speechbrain": "lin_neurons", "*": "embed_dim"},
        "attention_channels": "attention_channels",
        "se_channels": "se_channels",
        "sb_channels": "channels",
    }
    #: Task defaults where they differ from the constructor's: ``name: speechbrain`` alone is SpeechBrain's
    #: pretrained VoxCeleb layout (spkrec-ecapa-voxceleb, C=1024, MFA 3072), as ``params.model: speechbrain``
    #: always built.
    model_defaults: ClassVar[dict[str, dict]] = {"speechbrain": {"channels": [1024, 1024, 1024, 1024, 3072]}}

    def __init__(
        self, params: SpeakerParams | None = None, *, seed: int = 0, model: ModelSpec | dict | None = None
    ) -> None:
        params = params if params is not None else SpeakerParams()
        self.p, self.params, self.seed = params, params, seed
        spec = model_spec(self.model_domain, model, self.default_model, self.model_inputs)
        if spec.name == "speechbrain" and isinstance(spec.kwargs.get("channels"), int):
            raise ValueError(
                f"model.channels of the speechbrain layout is its list of block widths (e.g. [1024, 1024, 1024, "
                f"1024, 3072]), got {spec.kwargs['channels']}; an old params.channels (the paper layout's C) never "
                "applied to this layout: remove it"
            )
        self.model = ModelSpec(spec.name, self.model_defaults.get(spec.name, {}) | spec.kwargs)
        self.n_classes = 0
        self.n_feats = params.n_mels
        self._datasets: dict[str, Dataset] | None = None
        self._model: nn.Module | None = None
        self._trials: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cohort_sources: list = []
        self._train_set: Dataset | None = None

    # ------------------------------------------------------------------ data
    def _synthetic(self):
        from sigattn.synthetic.speakers import make_speaker_corpus

        p = self.p
        n_pool = p.synth_train_speakers + p.val_speakers
        waves, labels = make_speaker_corpus(
            n_pool, p.synth_utts, p.synth_seconds, p.synth_seed, p.sample_rate
        )
        test_ids = range(n_pool, n_pool + p.synth_test_speakers)
        t_waves, t_labels = make_speaker_corpus(
            list(test_ids), p.synth_utts, p.synth_seconds, p.synth_seed, p.sample_rate
        )
        pool = [(w, str(s)) for w, s in zip(waves, labels)]
        test = [(w, str(s)) for w, s in zip(t_waves, t_labels)]
        return pool, test, None

    def _real(self):
        p = self.p
        train = _manifest(p.source, p.train, p.train_speaker_from)
        pool = [(it.path, it.speaker) for it in train]
        if p.trials:
            root = resolve_data_path(p.trials_root) if p.trials_root else None
            trials = read_trials(resolve_data_path(p.trials), root)
            files = sorted({f for _, a, b in trials for f in (a, b)})
            return pool, [(f, "") for f in files], trials
        test = _manifest(p.source, p.test, p.test_speaker_from)
        return pool, [(it.path, it.speaker) for it in test], all_pair_trials(test)

    def _pair_index(self, sources: list, trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = {s: i for i, s in enumerate(sources)}
        a = np.array([pos[t[1]] for t in trials])
        b = np.array([pos[t[2]] for t in trials])
        return a, b, np.array([t[0] for t in trials], dtype=np.int64)

    def _all_pairs(self, speakers: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i, j = np.triu_indices(len(speakers), k=1)
        s = np.asarray(speakers)
        return i, j, (s[i] == s[j]).astype(np.int64)

    def build_datasets(self) -> dict[str, Dataset]:
        p = self.p
        pool, test, trials = self._synthetic() if p.source == "synthetic" else self._real()
        speakers = sorted({s for _, s in pool})
        if p.val_speakers >= len(speakers):
            raise DataError(
                f"params.val_speakers={p.val_speakers} leaves no training speakers ({len(speakers)})"
            )
        rng = np.random.default_rng(self.seed)
        val_spk = (
            set(rng.choice(speakers, size=p.val_speakers, replace=False).tolist())
            if p.val_speakers
            else set()
        )
        train = [(src, s) for src, s in pool if s not in val_spk]
        train_spk = sorted({s for _, s in train})
        label = {s: k for k, s in enumerate(train_spk)}
        self.n_classes = len(train_spk) * (3 if p.speed_perturb else 1)
        log.info(
            "speaker: %d training speakers (%d utterances), %d validation speakers",
            len(train_spk),
            len(train),
            len(val_spk),
        )

        sources, labels = [t[0] for t in train], [label[t[1]] for t in train]
        sr, n_mels = p.sample_rate, p.n_mels
        if p.speed_perturb:
            sources, labels = self._speed_copies(sources, labels, len(train_spk))
        epoch_size = p.epoch_size or len(sources)
        spec = None
        if p.spec_augment:
            from .augment import SpecAugment

            spec = SpecAugment()
        augment = self._waveform_augment()
        # small sets: features computed once, crops in frames (they tile short clips, so short='pad' takes
        # the waveform path, which pads with zeros as documented)
        if augment is None and len(sources) <= 5000 and p.short != "pad":
            feats = [
                UtteranceDataset(
                    [s],
                    sr,
                    n_mels,
                    max_seconds=None,
                    min_seconds=0,
                    cache=False,
                    cmn=p.cmn,
                    resample=p.resample,
                    truncated=p.truncated,
                )[0]["feats"]
                for s in sources
            ]
            crop = int(round(p.crop_seconds * 100))
            if p.short == "reject":
                short = [i for i, f in enumerate(feats) if f.shape[1] < crop]
                if short:
                    first = sources[short[0]] if isinstance(sources[short[0]], str) else f"item {short[0]}"
                    raise ValueError(
                        f"{len(short)} training clips are shorter than {p.crop_seconds} s (short='reject'), e.g. {first}"
                    )
            train_set: Dataset = FeatureCropDataset(feats, labels, crop, epoch_size, spec, self.seed)
        else:
            train_set = CropDataset(
                sources,
                labels,
                p.crop_seconds,
                sr,
                augment,
                spec,
                p.short,
                epoch_size,
                n_mels,
                seed=self.seed,
                cmn=p.cmn,
                resample=p.resample,
                truncated=p.truncated,
            )
        self._train_set = train_set

        val_items, per_spk = [], dict.fromkeys(val_spk, 0)
        for src, s in pool:  # the first val_utts_per_speaker utterances of each validation speaker
            if s in val_spk and (not p.val_utts_per_speaker or per_spk[s] < p.val_utts_per_speaker):
                val_items.append((src, s))
                per_spk[s] += 1
        if val_items and all(sum(1 for _, t in val_items if t == s) == 1 for s in val_spk):
            val_items = self._split_halves(val_items)
        out: dict[str, Dataset] = {"train": train_set}
        # whole files: long ones are embedded in max_eval_seconds chunks in predict(), as embed() does
        eval_kw = dict(min_seconds=p.min_eval_seconds, cmn=p.cmn, resample=p.resample, truncated=p.truncated)
        if val_items:
            out["val"] = UtteranceDataset([v[0] for v in val_items], sr, n_mels, None, **eval_kw)
            self._trials["val"] = self._all_pairs([v[1] for v in val_items])
        test_sources = [t[0] for t in test]
        out["test"] = UtteranceDataset(test_sources, sr, n_mels, None, **eval_kw)
        self._trials["test"] = (
            self._all_pairs([t[1] for t in test])
            if trials is None
            else self._pair_index(test_sources, trials)
        )
        if p.cohort_size:
            idx = rng.permutation(len(train))[: p.cohort_size]
            self._cohort_sources = [train[i][0] for i in sorted(idx)]
        self.n_feats = out["test"].num_mel_bins  # what every split's features have: the model's input size
        self._datasets = out
        return out

    def _split_halves(self, items):
        """Single-utterance speakers: the two halves of each utterance become two validation utterances."""
        from .audio import load_audio

        out = []
        for src, s in items:
            w = (
                load_audio(src, self.p.sample_rate, self.p.resample, self.p.truncated)
                if isinstance(src, str)
                else src
            )
            h = w.shape[0] // 2
            out += [(w[:h], s), (w[h:], s)]
        return out

    def _speed_copies(self, sources, labels, n_spk):
        from .audio import load_audio
        from .augment import speed_perturb

        out_s, out_l = list(sources), list(labels)
        for k, factor in enumerate((0.9, 1.1), start=1):
            for s, lab in zip(sources, labels):
                w = (
                    load_audio(s, self.p.sample_rate, self.p.resample, self.p.truncated)
                    if isinstance(s, str)
                    else s
                )
                out_s.append(speed_perturb(w, factor))
                out_l.append(lab + k * n_spk)
        return out_s, out_l

    def _waveform_augment(self):
        from .augment import AddNoise, AddReverb, Compose

        p, parts = self.p, []
        if p.rir_dir:
            parts.append(AddReverb(resolve_data_path(p.rir_dir), p=p.aug_prob, sample_rate=p.sample_rate))
        if p.noise_dir:
            parts.append(
                AddNoise(resolve_data_path(p.noise_dir), tuple(p.snr_range), p.aug_prob, p.sample_rate)
            )
        return Compose(parts) if parts else None

    def collate(self, items):
        """Training items ``(feats, label)`` -> ``{"feats", "labels"}``; evaluation items (dicts) -> zero-padded
        ``{"feats" (B, bins, T_max), "lengths", "index"}``."""
        if isinstance(items[0], dict):
            lengths = torch.tensor([it["feats"].shape[1] for it in items])
            feats = torch.zeros(len(items), items[0]["feats"].shape[0], int(lengths.max()))
            for k, it in enumerate(items):
                feats[k, :, : lengths[k]] = it["feats"]
            return {"feats": feats, "lengths": lengths, "index": torch.tensor([it["index"] for it in items])}
        return {
            "feats": torch.stack([it[0] for it in items]),
            "labels": torch.tensor([it[1] for it in items]),
        }

    # ----------------------------------------------------------------- model
    def build_embedding(self) -> nn.Module:
        """The embedding network of the recipe's ``model:`` section; its input size is the features' bins."""
        name = self.model.name
        arg = _input_argument(model_class(self.model_domain, name), self.model_inputs)
        return create_model(self.model_domain, name, **{arg: self.n_feats}, **self.model.kwargs)

    def build_model(self) -> nn.Module:
        """Embedding network + AAM head over the training speakers; shapes come from the datasets (built here
        once if the engine has not built them yet)."""
        p = self.p
        if self._datasets is None:
            self.build_datasets()
        net = self.build_embedding()
        model = SpeakerModel(
            net, _embedding_size(net, self.n_feats), max(self.n_classes, 2), p.margin, p.scale
        )
        if p.init_checkpoint:
            self._load_init(model, resolve_data_path(p.init_checkpoint))
        return model

    def _load_init(self, model: SpeakerModel, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("weights", "model"):  # engine best.ckpt / step checkpoints
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
        emb = {k[len("embedding.") :]: v for k, v in state.items() if k.startswith("embedding.")} or state
        model.embedding.load_state_dict(emb)
        log.info("speaker: embedding network initialised from %s (AAM head re-initialised)", path)

    def export_model(self, model: nn.Module) -> nn.Module:
        """The embedding network alone (no AAM head)."""
        return unwrap(model).embedding

    def example_inputs(self) -> tuple[Tensor, ...]:
        return (torch.randn(2, self.n_feats, 200),)

    # ------------------------------------------------------------- training
    def loss(self, model: nn.Module, batch, *, epoch: int, step: int):
        # The engine calls the train set's set_epoch before each epoch (before workers copy it); the margin
        # depends on the epoch alone, so every step of an epoch sets the same value.
        inner = unwrap(model)
        inner.head.margin = margin_schedule(epoch, self.p.margin, *self.p.margin_warmup)
        loss, acc = model(batch["feats"], None, batch["labels"])
        return loss, {"acc": float(acc), "margin": inner.head.margin}

    def _chunk_frames(self) -> int | None:
        """Evaluation chunk length in 10 ms frames (``params.max_eval_seconds``; ``None``: whole files)."""
        return int(self.p.max_eval_seconds * 100) if self.p.max_eval_seconds > 0 else None

    def predict(self, model: nn.Module, batch) -> dict[str, Tensor]:
        """Embeddings of whole clips; clips longer than ``params.max_eval_seconds`` get the mean embedding of
        their chunks, exactly as ``embed(chunk_seconds=max_eval_seconds)``."""
        self._model = model
        emb = embed_padded_batch(model, batch["feats"], batch["lengths"], self._chunk_frames())
        return {"embedding": emb.float(), "index": batch["index"]}

    # ------------------------------------------------------------ evaluation
    def _cohort_embeddings(self) -> np.ndarray | None:
        if not self._cohort_sources or self._model is None:
            return None
        if not hasattr(self, "_cohort_cache"):
            self._cohort_cache = UtteranceDataset(
                self._cohort_sources,
                self.p.sample_rate,
                self.p.n_mels,
                None,
                cache=len(self._cohort_sources) <= 1000,  # large cohorts: recompute features, bounded memory
                min_seconds=self.p.min_eval_seconds,
                cmn=self.p.cmn,
                resample=self.p.resample,
                truncated=self.p.truncated,
            )
        model = self._model
        dev = next(model.parameters()).device
        out = []
        was_training = model.training
        model.eval()  # BatchNorm running statistics: neither used from the batch nor updated
        try:
            with torch.no_grad():
                for i in range(0, len(self._cohort_cache), 16):
                    batch = self.collate(
                        [self._cohort_cache[k] for k in range(i, min(i + 16, len(self._cohort_cache)))]
                    )
                    emb = embed_padded_batch(
                        model, batch["feats"].to(dev), batch["lengths"].to(dev), self._chunk_frames()
                    )
                    out.append(emb.float().cpu())
        finally:
            model.train(was_training)
        return torch.cat(out).numpy()

    def scores(self, outputs: dict[str, Tensor], split: str) -> dict[str, np.ndarray]:
        """Trial labels and scores (``cosine``, and ``asnorm`` with a cohort) of a split's embeddings."""
        emb = outputs["embedding"].double().numpy()
        a, b, labels = self._trials[split]
        cohort = self._cohort_embeddings()
        mean = cohort.mean(axis=0) if cohort is not None else None
        out = {"labels": labels, "cosine": cosine_scores(emb[a], emb[b], mean)}
        if cohort is not None:
            out["asnorm"] = as_norm(out["cosine"], emb[a], emb[b], cohort, self.p.asnorm_top_k, mean)
        return out

    def metrics(self, outputs: dict[str, Tensor], split: str) -> dict[str, float]:
        s = self.scores(outputs, split)
        m = verification_metrics(s["cosine"], s["labels"])
        if "asnorm" in s:
            m |= verification_metrics(s["asnorm"], s["labels"], prefix="asnorm_")
        m["trials"] = float(len(s["labels"]))
        m["target_trials"] = float(s["labels"].sum())
        return m

    def plots(self, model: nn.Module, outputs: dict[str, Tensor], split: str, out_dir: Path) -> list[Path]:
        self._model = model
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        s = self.scores(outputs, split)
        key = "cosine"  # the monitored, primary score (AS-norm numbers are in the metrics table)
        return [
            plot_det(s[key], s["labels"], out_dir / f"{split}_det.png", f"DET ({split}, {key})"),
            plot_score_histogram(
                s[key], s["labels"], out_dir / f"{split}_scores.png", f"{split} scores ({key})"
            ),
        ]

    def demo_checks(self, metrics: dict[str, float]) -> dict[str, bool | None]:
        eer = metrics.get("test/eer", float("nan"))
        # the demo's criterion; it does not apply (None) to real speech
        ok = bool(eer < 5.0) if self.p.source == "synthetic" else None
        return {f"EER on held-out synthetic speakers < 5% (got {eer:.2f}%)": ok}
