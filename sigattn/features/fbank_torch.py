"""Kaldi-compatible log-mel filterbank as a torch module (batched, any device, differentiable).

The same features as :func:`sigattn.features.fbank` (Povey et al., "The Kaldi Speech Recognition Toolkit",
ASRU 2011; torchaudio ``compliance.kaldi.fbank`` semantics), computed with torch ops so that features can be
made on the fly on a GPU, inside a model, or exported. Mel weights are the dense float64 Kaldi banks stored
as a float32 buffer. Padded items of a batch give exactly what they give alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from .fbank import FLT_EPSILON, frame_params, mel_banks, window_function

__all__ = ["Fbank"]


class Fbank(nn.Module):
    """Batched Kaldi fbank: ``(B, n)`` waveforms -> ``(B, bins, T)`` features and frame lengths.

    The constructor takes the keyword arguments of :func:`sigattn.features.fbank` (``sample_rate``,
    ``num_mel_bins``, ``frame_length``, ``frame_shift``, ``dither``, ``preemphasis_coefficient``,
    ``remove_dc_offset``, ``window_type``, ``blackman_coeff``, ``round_to_power_of_two``, ``snip_edges``,
    ``low_freq``, ``high_freq``, ``energy_floor``, ``raw_energy``, ``use_energy``, ``use_log_fbank``,
    ``use_power``) with the same defaults; dither is applied in training mode only.

    Example:
        >>> import torch
        >>> feats, n = Fbank()(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> tuple(feats.shape), n.tolist()
        ((2, 80, 98), [98, 48])
    """

    def __init__(
        self,
        sample_rate: float = 16000,
        num_mel_bins: int = 80,
        frame_length: float = 25.0,
        frame_shift: float = 10.0,
        dither: float = 0.0,
        preemphasis_coefficient: float = 0.97,
        remove_dc_offset: bool = True,
        window_type: str = "povey",
        blackman_coeff: float = 0.42,
        round_to_power_of_two: bool = True,
        snip_edges: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        energy_floor: float = 1.0,
        raw_energy: bool = True,
        use_energy: bool = False,
        use_log_fbank: bool = True,
        use_power: bool = True,
    ) -> None:
        super().__init__()
        self.size, self.shift, self.padded = frame_params(
            sample_rate, frame_length, frame_shift, round_to_power_of_two
        )
        self.sample_rate = float(sample_rate)
        self.dither = float(dither)
        self.preemph = float(preemphasis_coefficient)
        self.remove_dc = bool(remove_dc_offset)
        self.snip_edges = bool(snip_edges)
        self.raw_energy = bool(raw_energy)
        self.use_energy = bool(use_energy)
        self.use_log = bool(use_log_fbank)
        self.use_power = bool(use_power)
        self.log_floor = math.log(energy_floor) if energy_floor > 0 else -math.inf
        win = window_function(window_type, self.size, blackman_coeff)
        banks = mel_banks(num_mel_bins, self.padded, sample_rate, low_freq, high_freq)
        self.register_buffer("window", torch.from_numpy(win), persistent=False)
        self.register_buffer("banks", torch.from_numpy(banks.T.astype(np.float32)), persistent=False)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Number of frames of each item from its number of samples."""
        if self.snip_edges:
            return torch.where(lengths >= self.size, 1 + (lengths - self.size) // self.shift, 0)
        return (lengths + self.shift // 2) // self.shift

    def _frames(self, wave: Tensor, lengths: Tensor, n_frames: int) -> Tensor:
        b, n = wave.shape
        if self.snip_edges:
            if n < self.size:
                wave = nn.functional.pad(wave, (0, self.size - n))
            return wave.unfold(1, self.size, self.shift)[:, :n_frames]
        # Kaldi reflection (-1 -> 0, n -> n - 1) against each item's own length, by gather.
        offs = self.shift // 2 - self.size // 2
        idx = (torch.arange(n_frames, device=wave.device) * self.shift + offs)[:, None] + torch.arange(
            self.size, device=wave.device
        )
        idx = idx[None].expand(b, -1, -1)
        nb = lengths.to(wave.device).view(b, 1, 1)
        for _ in range(2):  # two passes cover frames longer than the item
            idx = torch.where(idx < 0, -idx - 1, idx)
            idx = torch.where(idx >= nb, 2 * nb - 1 - idx, idx)
        idx = idx.clamp(0, max(n - 1, 0))
        return wave.gather(1, idx.reshape(b, -1)).view(b, n_frames, self.size)

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Features ``(B, bins (+1), T_max)`` zero padded and ``frame_lengths (B,)`` int64."""
        if wave.dim() != 2:
            raise ValueError(f"Fbank expects waveforms of shape (B, n), got {tuple(wave.shape)}")
        if not wave.is_floating_point():
            raise TypeError(f"Fbank expects a floating waveform, got {wave.dtype}")
        b, n = wave.shape
        if lengths is None:
            lengths = torch.full((b,), n, dtype=torch.long, device=wave.device)
        lengths = lengths.to(device=wave.device, dtype=torch.long)
        if lengths.shape != (b,):
            raise ValueError(f"lengths must have shape ({b},), got {tuple(lengths.shape)}")
        n_fr = self.frame_lengths(lengths)
        if bool((n_fr <= 0).any()):
            bad = int(torch.nonzero(n_fr <= 0)[0, 0])
            raise ValueError(
                f"waveform {bad} has {int(lengths[bad])} samples, shorter than one frame ({self.size} samples)"
            )
        t_max = int(n_fr.max())
        out_dtype = wave.dtype
        # Framing in float64 (as the Numba kernels do), FFT in the input dtype.
        x = self._frames(wave.to(torch.float64), lengths, t_max)
        if self.dither > 0 and self.training:
            x = x + torch.randn_like(x) * self.dither
        if self.remove_dc:
            x = x - x.mean(dim=-1, keepdim=True)
        if self.raw_energy:
            energy = x.pow(2).sum(-1)
        if self.preemph != 0.0:
            prev = torch.cat([x[..., :1], x[..., :-1]], dim=-1)
            x = x - self.preemph * prev
        x = x * self.window
        if not self.raw_energy:
            energy = x.pow(2).sum(-1)
        x = nn.functional.pad(x.to(out_dtype), (0, self.padded - self.size))
        spec = torch.fft.rfft(x, dim=-1)
        power = spec.real.pow(2) + spec.imag.pow(2)
        if not self.use_power:
            power = power.sqrt()
        mel = power @ self.banks.to(power.dtype)
        if self.use_log:
            mel = mel.clamp_min(FLT_EPSILON).log()
        if self.use_energy:
            e = energy.clamp_min(FLT_EPSILON).log().clamp_min(self.log_floor)
            mel = torch.cat([e.unsqueeze(-1).to(mel.dtype), mel], dim=-1)
        valid = torch.arange(t_max, device=wave.device)[None, :] < n_fr[:, None]
        feats = (mel * valid.unsqueeze(-1).to(mel.dtype)).transpose(1, 2)
        return feats, n_fr
