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

from ._lanes_plan import FAST_N, lane_plan
from .fbank import FLT_EPSILON, _segments, frame_params, mel_banks, window_function

__all__ = ["Fbank"]


class Fbank(nn.Module):
    """Batched Kaldi fbank: ``(B, n)`` waveforms -> ``(B, bins, T)`` features and frame lengths.

    The constructor takes the keyword arguments of :func:`sigattn.features.fbank` (``sample_rate``,
    ``num_mel_bins``, ``frame_length``, ``frame_shift``, ``dither``, ``preemphasis_coefficient``,
    ``remove_dc_offset``, ``window_type``, ``blackman_coeff``, ``round_to_power_of_two``, ``snip_edges``,
    ``low_freq``, ``high_freq``, ``energy_floor``, ``raw_energy``, ``use_energy``, ``use_log_fbank``,
    ``use_power``) with the same defaults; dither is applied in training mode only.

    ``fft="exact"`` (default) computes power-of-two FFT sizes with the Numba kernel's own algorithm and operation
    order, so that features equal :func:`~sigattn.features.fbank`'s to the rounding of the mel sums (~1e-6),
    on any device; ``fft="native"`` uses ``torch.fft.rfft`` (cuFFT on a GPU: faster; differs by up to ~1e-2
    in near-silent bins, where every float32 FFT is ~3e-3 from the float64 result).

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
        fft: str = "exact",
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
        # an empty band raises, as in fbank
        _segments(num_mel_bins, self.padded, sample_rate, low_freq, high_freq)
        self.register_buffer("window", torch.from_numpy(win), persistent=False)
        self.register_buffer("banks", torch.from_numpy(banks.T.astype(np.float32)), persistent=False)
        # "exact": power-of-two sizes run the Numba kernel's FFT (radix-4, same twiddles, same operation order,
        # no fused multiply-adds). Two different float32 FFTs disagree by up to ~1e-2 in bins ~100 dB below a
        # frame's peak (near-silent speech), each being ~2-5e-3 from the float64 result there.
        n = self.padded // 2
        if fft not in ("exact", "native"):
            raise ValueError(f"fft must be 'exact' or 'native', got {fft!r}")
        self.same_fft = fft == "exact" and self.padded & (self.padded - 1) == 0 and n in FAST_N
        if self.same_fft:
            order, tw = lane_plan(n)
            k = np.arange(n)
            split = np.stack([np.cos(-np.pi * k / n), np.sin(-np.pi * k / n)])
            self.register_buffer("fft_order", torch.from_numpy(order.copy()), persistent=False)
            self.register_buffer("fft_conj", torch.from_numpy((n - k) % n), persistent=False)
            self.register_buffer("fft_tw", torch.from_numpy(tw.T.copy()), persistent=False)
            self.register_buffer("fft_split", torch.from_numpy(split), persistent=False)
        # constants keep their dtype through module.half() / .float() / .to(dtype) (a model holding Fbank gets
        # cast as a whole): float64 window and twiddles, float32 banks; only device moves apply
        self._constants = {name: buf.clone() for name, buf in self.named_buffers()}

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for name, master in self._constants.items():
            buf = self._buffers[name]
            if buf.dtype != master.dtype:
                self._buffers[name] = master.to(buf.device)
        return self

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
        # Kaldi reflects until the index is inside (many times for items much shorter than a frame): the
        # reflection is periodic with period 2 nb
        period = (2 * nb).clamp_min(1)
        idx = torch.remainder(idx, period)
        idx = torch.where(idx >= nb, period - 1 - idx, idx)
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
        if bool(((lengths < 0) | (lengths > n)).any()):
            raise ValueError(f"lengths {lengths.tolist()} do not fit waveforms of shape {(b, n)}")
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
        if self.same_fft:
            power = self._power(x)
            banks = self.banks[: power.shape[-1]]  # the Nyquist bin's weight is 0
        else:
            spec = torch.fft.rfft(x, dim=-1)
            power = spec.real.pow(2) + spec.imag.pow(2)
            banks = self.banks
        if not self.use_power:
            power = power.sqrt()
        mel = power @ banks.to(power.dtype)
        if self.use_log:
            mel = mel.clamp_min(FLT_EPSILON).log()
        if self.use_energy:
            e = energy.clamp_min(FLT_EPSILON).log().clamp_min(self.log_floor)
            mel = torch.cat([e.unsqueeze(-1).to(mel.dtype), mel], dim=-1)
        valid = torch.arange(t_max, device=wave.device)[None, :] < n_fr[:, None]
        feats = (mel * valid.unsqueeze(-1).to(mel.dtype)).transpose(1, 2)
        return feats, n_fr

    def _power(self, x: Tensor) -> Tensor:
        """Power spectrum, bins ``0 .. padded/2 - 1``, of real frames ``x`` (..., padded), computed exactly as
        :func:`sigattn.features._lanes.fbank_groups` does: the frame packed as ``z[m] = x[2m] + i x[2m+1]``,
        a radix-4 decimation-in-time FFT of ``padded/2`` points (one radix-2 stage first when needed), the
        split into the real FFT's bins (bins ``k`` and ``n - k`` from one product ``w^k O``), ``|X|^2``."""
        n = self.padded // 2
        dt = x.dtype
        re = x[..., 0::2].index_select(-1, self.fft_order)
        im = x[..., 1::2].index_select(-1, self.fft_order)
        lead = re.shape[:-1]
        tw = self.fft_tw.to(dt)
        q = 1
        if (n.bit_length() - 1) % 2:
            re, im = re.reshape(*lead, n // 2, 2), im.reshape(*lead, n // 2, 2)
            ar, br, ai, bi = re[..., 0], re[..., 1], im[..., 0], im[..., 1]
            re = torch.stack([ar + br, ar - br], dim=-1).reshape(*lead, n)
            im = torch.stack([ai + bi, ai - bi], dim=-1).reshape(*lead, n)
            q = 2
        while q < n:
            re, im = re.reshape(*lead, n // (4 * q), 4, q), im.reshape(*lead, n // (4 * q), 4, q)
            c1, s1, c2, s2, c3, s3 = tw[:, q : 2 * q]
            xr, xi = re[..., 1, :], im[..., 1, :]
            w1r, w1i = xr * c1 - xi * s1, xr * s1 + xi * c1
            xr, xi = re[..., 2, :], im[..., 2, :]
            w2r, w2i = xr * c2 - xi * s2, xr * s2 + xi * c2
            xr, xi = re[..., 3, :], im[..., 3, :]
            w3r, w3i = xr * c3 - xi * s3, xr * s3 + xi * c3
            a0r, a0i = re[..., 0, :], im[..., 0, :]
            t0r, t0i, t1r, t1i = a0r + w2r, a0i + w2i, a0r - w2r, a0i - w2i
            t2r, t2i, t3r, t3i = w1r + w3r, w1i + w3i, w1r - w3r, w1i - w3i
            re = torch.stack([t0r + t2r, t1r + t3i, t0r - t2r, t1r - t3i], dim=-2).reshape(*lead, n)
            im = torch.stack([t0i + t2i, t1i - t3r, t0i - t2i, t1i + t3r], dim=-2).reshape(*lead, n)
            q *= 4
        half = n // 2
        a, b = re[..., : half + 1], im[..., : half + 1]
        conj = self.fft_conj[: half + 1]
        c, d = re.index_select(-1, conj), im.index_select(-1, conj)
        er, ei, odr, odi = a + c, b - d, b + d, c - a
        wr, wi = self.fft_split.to(dt)[:, : half + 1]
        pr = odr * wr - odi * wi
        pi = odi * wr + odr * wi
        xr, xi = er + pr, ei + pi  # 2 X[k], k = 0 .. n/2
        low = (xr * xr + xi * xi) * 0.25
        xr, xi = er[..., 1:half] - pr[..., 1:half], ei[..., 1:half] - pi[..., 1:half]  # 2 conj X[n - k]
        high = (xr * xr + xi * xi) * 0.25
        return torch.cat([low, high.flip(-1)], dim=-1)
