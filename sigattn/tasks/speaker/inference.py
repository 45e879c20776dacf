"""Speaker-embedding inference: batched, masked, chunked extraction and ONNX export.

``embed`` turns files or waveforms into L2-normalised-ready embeddings with the same features as training
(Kaldi fbank, 80 bins, sentence mean normalisation). Utterances are sorted by length and batched with
``lengths`` so padding never changes an embedding (exact masking, see ``sigattn.models.ecapa``). Long audio
is split into chunks of ``chunk_seconds`` whose embeddings are averaged (as WeSpeaker's runtime does), which
bounds memory (speechbrain issues #1825, #1398).

Desplanques et al., "ECAPA-TDNN", Interspeech 2020 (arXiv 2005.07143).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sigattn.utils import unwrap

from .audio import load_audio
from .data import check_min_seconds, extract_fbank

__all__ = ["chunk_bounds", "embed", "embed_features", "embed_padded_batch", "export_onnx"]


def _embedding_net(model: nn.Module) -> nn.Module:
    model = unwrap(model)
    return getattr(model, "embedding", model)


def chunk_bounds(n_frames: int, chunk_frames: int | None) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` frame ranges that ``embed`` and the speaker task's evaluation average over: one
    range when ``n_frames <= chunk_frames`` (or ``chunk_frames`` is ``None``), else consecutive chunks of
    ``chunk_frames`` with a tail shorter than a quarter chunk folded into the last one."""
    if chunk_frames is None or n_frames <= chunk_frames:
        return [(0, n_frames)]
    starts = list(range(0, n_frames, chunk_frames))
    if len(starts) > 1 and n_frames - starts[-1] < chunk_frames // 4:  # fold a tiny tail into the last chunk
        starts.pop()
    return list(zip(starts, starts[1:] + [n_frames]))


def embed_padded_batch(net: nn.Module, feats: torch.Tensor, lengths: torch.Tensor,
                       chunk_frames: int | None = None) -> torch.Tensor:  # fmt: skip
    """Embeddings ``(B, D)`` of a zero-padded batch ``(B, bins, T)`` with valid ``lengths``; an item longer
    than ``chunk_frames`` gets the mean embedding of its :func:`chunk_bounds` chunks (as :func:`embed`),
    computed in sub-batches of at most ``B`` chunks so memory stays bounded by the chunk length."""
    lens = [int(n) for n in lengths.tolist()]
    if chunk_frames is None or max(lens) <= chunk_frames:
        return net(feats, lengths)
    pieces = [(k, s, e) for k, n in enumerate(lens) for s, e in chunk_bounds(n, chunk_frames)]
    outs = []
    for i in range(0, len(pieces), feats.shape[0]):
        group = pieces[i : i + feats.shape[0]]
        sub_len = torch.tensor([e - s for _, s, e in group], device=lengths.device, dtype=lengths.dtype)
        x = feats.new_zeros(len(group), feats.shape[1], int(sub_len.max()))
        for r, (k, s, e) in enumerate(group):
            x[r, :, : e - s] = feats[k, :, s:e]
        outs.append(net(x, sub_len).float())
    emb = torch.cat(outs)
    owner = torch.tensor([k for k, _, _ in pieces], device=emb.device)
    total = emb.new_zeros(len(lens), emb.shape[1]).index_add_(0, owner, emb)
    return total / torch.bincount(owner, minlength=len(lens)).to(emb.dtype)[:, None]


@torch.no_grad()
def embed_features(model: nn.Module, feats: list, batch_size: int = 16, device=None) -> np.ndarray:
    """Embeddings ``(n, D)`` of a list of ``(bins, frames)`` feature arrays, batched by length with masking."""
    net = _embedding_net(model)
    was = net.training
    net.eval()
    device = device or next(net.parameters()).device
    order = np.argsort([-f.shape[1] for f in feats], kind="stable")
    out: list = [None] * len(feats)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        lengths = torch.tensor([feats[k].shape[1] for k in idx])
        x = torch.zeros(len(idx), feats[idx[0]].shape[0], int(lengths.max()))
        for r, k in enumerate(idx):
            x[r, :, : lengths[r]] = torch.as_tensor(feats[k])
        emb = net(x.to(device), lengths.to(device)).float().cpu().numpy()
        for r, k in enumerate(idx):
            out[k] = emb[r]
    net.train(was)
    return np.stack(out)


def embed(
    model: nn.Module,
    files_or_waveforms: str | Path | np.ndarray | list,
    sample_rate: int = 16000,
    batch_size: int = 16,
    chunk_seconds: float | None = 30.0,
    min_seconds: float = 0.1,
    resample: bool = True,
    num_mel_bins: int = 80,
    cmn: bool = True,
    truncated: str = "error",
) -> np.ndarray:
    """Speaker embeddings of audio files or 1-D waveforms (float in [-1, 1] at ``sample_rate``).

    Args:
        model: an embedding network (``ECAPATDNN``, ``SpeechBrainECAPA``) or a trained ``SpeakerModel``.
        files_or_waveforms: a path, a waveform, or a list of them.
        chunk_seconds: audio longer than this is embedded in chunks whose embeddings are averaged
            (``None``: whole utterances, unbounded memory).
        min_seconds: shorter clips raise a ``ValueError`` naming the item. Accepted clips are embedded from
            their own frames, never padded or tiled, exactly as the speaker task's evaluation does
            (``params.min_eval_seconds``, same default).
        resample: resample files at other rates (``False``: reject them).
        truncated: ``"error"`` or ``"warn"`` for a file holding fewer frames than its header declares.
        num_mel_bins: fbank bins the model was trained with.
        cmn: sentence mean normalisation, as in training.

    Returns:
        ``(n, D)`` float32 embeddings (not normalised; score with ``scoring.cosine_scores``).

    Example:
        >>> from sigattn.models.ecapa import ECAPATDNN
        >>> net = ECAPATDNN(channels=32, mfa_channels=48, embed_dim=16)
        >>> embed(net, [np.random.default_rng(0).standard_normal(8000).astype("float32") * 0.1]).shape
        (1, 16)
    """
    items = files_or_waveforms
    if isinstance(items, (str, Path)) or (isinstance(items, np.ndarray) and items.ndim == 1):
        items = [items]
    if len(items) == 0:
        raise ValueError(
            "embed: expected a path, a 1-D waveform or a non-empty list of them, got an empty "
            + type(items).__name__
        )
    feats, owner = [], []
    for n, it in enumerate(items):
        if isinstance(it, (str, Path)):
            wave, name = load_audio(it, sample_rate, resample, truncated), str(it)
        else:
            wave, name = np.asarray(it, dtype=np.float32), f"waveform {n}"
            if wave.ndim != 1:
                raise ValueError(f"{name}: expected a 1-D waveform, got shape {wave.shape}")
        check_min_seconds(wave, sample_rate, min_seconds, name)
        f = extract_fbank(wave, sample_rate, num_mel_bins, cmn=cmn)
        for s, e in chunk_bounds(f.shape[1], None if chunk_seconds is None else int(chunk_seconds * 100)):
            feats.append(f[:, s:e])
            owner.append(n)
    emb = embed_features(model, feats, batch_size)
    owner_arr = np.asarray(owner)
    return np.stack([emb[owner_arr == n].mean(axis=0) for n in range(len(items))]).astype(np.float32)


def export_onnx(model: nn.Module, path: str | Path, num_mel_bins: int = 80, with_lengths: bool = False,
                opset: int = 17) -> Path:  # fmt: skip
    """Export the embedding network to ONNX with dynamic batch and time axes (TorchScript exporter).

    Inputs: ``feats`` ``(B, bins, T)`` float32 (+ ``lengths`` ``(B,)`` int64 when ``with_lengths``);
    output ``embedding`` ``(B, D)``.
    """
    net = _embedding_net(model).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(2, num_mel_bins, 200)
    args: tuple = (x, torch.tensor([200, 150])) if with_lengths else (x,)
    names = ["feats", "lengths"] if with_lengths else ["feats"]
    axes = {"feats": {0: "batch", 2: "frames"}, "embedding": {0: "batch"}}
    if with_lengths:
        axes["lengths"] = {0: "batch"}
    torch.onnx.export(net, args, str(path), input_names=names, output_names=["embedding"], dynamic_axes=axes,
                      opset_version=opset, dynamo=False)  # fmt: skip
    return path
