"""Speed of sigattn.features vs the tools a user would otherwise pick, side by side in one run.

    python benchmarks/features.py [--quick] [--write]

1. fbank, seconds of audio per second: sigattn Numba (the fused lanes kernel, and the block path with
   ``torch.fft`` that other FFT sizes take) and torch ``Fbank`` vs ``torchaudio.compliance.kaldi.fbank`` vs
   kaldi-native-fbank vs the FFT-only bound: ``torch.fft.rfft`` (MKL here) of the (frames, 512) frame matrix
   alone, the faster of one call on the whole matrix and blocks of 256 frames; ``scipy.fft.rfft(workers=1)``
   of the same matrix for comparison. Single thread and all cores, plus a one-thread sweep of the lanes
   kernel's chunk (frames per call).
2. EEG chain (64 channels at 160 Hz, 8-30 Hz band-pass, epoching, Euclidean alignment), recording-seconds per
   second: sigattn (``fir_epochs`` + in-place EA, in float64 and with float32 computation) vs MNE ``filter_data``
   + ``Epochs`` + NumPy EA (float64), and the FIR filter alone vs ``filter_data``.
3. First-call time (import + compile or cache load of every kernel) with a cold and a warm Numba cache.

Prints a markdown report; ``--write`` also writes it as the "features" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import add_write_flag, machine, markdown_table, publish  # noqa: E402


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (compile / caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def set_threads(n: int) -> None:
    from sigattn.features import set_num_threads

    set_num_threads(n)


BOUND = "FFT-only bound (the faster of the two torch.fft.rfft rows above)"
BLOCKS = "torch.fft.rfft of frames, in blocks of 256"
ONE_CALL = "torch.fft.rfft of frames, one call"


def bench_fbank(seconds: float, repeats: int, threads: list[int]) -> tuple[str, dict]:
    import importlib

    import kaldi_native_fbank as knf
    import scipy.fft
    import torch
    import torchaudio.compliance.kaldi as kaldi

    from sigattn.features import Fbank, fbank

    fbank_module = importlib.import_module("sigattn.features.fbank")
    block = 256

    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(int(seconds * 16000)) * 3000).astype(np.float32)
    wave_t = torch.from_numpy(wave)
    module = Fbank()
    native = Fbank(fft="native")
    n_frames = 1 + (wave.size - 400) // 160
    frames_np = rng.standard_normal((n_frames, 512)).astype(np.float32)
    frames = torch.from_numpy(frames_np)

    def fft_bound():
        for c0 in range(0, n_frames, block):
            torch.fft.rfft(frames[c0 : c0 + block], dim=-1)

    def run_knf():
        opts = knf.FbankOptions()
        opts.frame_opts.dither = 0.0
        opts.mel_opts.num_bins = 80
        f = knf.OnlineFbank(opts)
        f.accept_waveform(16000, wave)
        f.input_finished()
        return np.stack([f.get_frame(i) for i in range(f.num_frames_ready)])

    def block_path():
        saved = fbank_module.FAST_N
        fbank_module.FAST_N = ()  # the path of non-power-of-two FFT sizes, on the same input
        try:
            return fbank(wave)
        finally:
            fbank_module.FAST_N = saved

    tools = {
        "sigattn fbank (Numba)": lambda: fbank(wave),
        "sigattn fbank, block path (Numba + torch.fft; other FFT sizes)": block_path,
        "sigattn Fbank (torch module, fft='exact': the kernel's FFT in torch ops)": lambda: module(
            wave_t[None]
        ),
        "sigattn Fbank (torch module, fft='native': torch.fft)": lambda: native(wave_t[None]),
        "torchaudio kaldi.fbank": lambda: kaldi.fbank(wave_t[None], num_mel_bins=80, dither=0.0),
        "kaldi-native-fbank": run_knf,
        BLOCKS: fft_bound,
        ONE_CALL: lambda: torch.fft.rfft(frames, dim=-1),
        "scipy.fft.rfft of frames (workers=1)": lambda: scipy.fft.rfft(frames_np, axis=-1, workers=1),
    }
    rates: dict[tuple[str, int], float] = {}
    for n in threads:
        set_threads(n)
        for name, fn in tools.items():
            reps = max(1, repeats // 3) if name == "kaldi-native-fbank" else repeats
            rates[(name, n)] = seconds / best_time(fn, reps)
        rates[(BOUND, n)] = max(rates[(BLOCKS, n)], rates[(ONE_CALL, n)])
    rows = []
    for name in [*tools, BOUND]:
        row = [name] + [rates[(name, n)] for n in threads]
        row += [rates[(name, n)] / rates[("torchaudio kaldi.fbank", n)] for n in threads]
        row += [rates[(name, n)] / rates[(BOUND, n)] for n in threads]
        rows.append(row)
    hdr = ["tool"] + [f"audio-s/s, {n} thr" for n in threads]
    hdr += [f"x torchaudio, {n} thr" for n in threads] + [f"of FFT bound, {n} thr" for n in threads]
    md = f"**fbank**, {seconds:g} s of 16 kHz noise, 80 bins, 25/10 ms, best of {repeats}:\n\n"
    md += markdown_table(hdr, rows)
    # the lanes kernel's chunk (frames per kernel call, the log runs per chunk), one thread
    set_threads(1)
    sweep = []
    chunk = fbank_module.LANES_CHUNK
    for groups in (4, 16, 64, 256):
        fbank_module.LANES_CHUNK = groups
        t_fb = best_time(lambda: fbank(wave), repeats)
        sweep.append([16 * groups, seconds / t_fb, (seconds / t_fb) / rates[(BOUND, 1)]])
    fbank_module.LANES_CHUNK = chunk
    md += f"\n\nChunk sweep (one thread; sigattn uses {16 * chunk} frames):\n\n" + markdown_table(
        ["frames per kernel call", "fbank audio-s/s", "of FFT bound"], sweep
    )
    key = "sigattn fbank (Numba)"
    summary = {
        "fbank_vs_torchaudio_1thr": rates[(key, 1)] / rates[("torchaudio kaldi.fbank", 1)],
        "fbank_of_fft_bound_1thr": rates[(key, 1)] / rates[(BOUND, 1)],
    }
    return md, summary


def numpy_ea(x: np.ndarray) -> np.ndarray:
    r = np.mean(x @ x.transpose(0, 2, 1), axis=0)
    w, v = np.linalg.eigh(r)
    return ((v / np.sqrt(w)) @ v.T) @ x


CHAIN64 = "sigattn, float64: fir_epochs + in-place EA"
CHAIN32 = "sigattn, float32 compute on the float64 data: fir_epochs(dtype=float32) + in-place EA"
MNE_CHAIN = "MNE filter_data + Epochs + NumPy EA"


def bench_eeg(seconds: float, repeats: int, threads: list[int]) -> tuple[str, dict]:
    import mne

    from sigattn.features import (
        epochs_from_events,
        euclidean_alignment,
        fir_epochs,
        fir_filter,
        iir_filter,
    )

    mne.set_log_level("ERROR")
    sf, n_ch = 160.0, 64
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n_ch, int(seconds * sf))) * 1e-5
    ev_samples = np.arange(int(2 * sf), data.shape[1] - int(5 * sf), int(4.5 * sf))
    events = np.stack([ev_samples, np.zeros_like(ev_samples), np.ones_like(ev_samples)], axis=1)
    info = mne.create_info(n_ch, sf, "eeg")

    def chain64():
        return euclidean_alignment(fir_epochs(data, sf, 8.0, 30.0, events, 0.0, 4.0), inplace=True)[0]

    def chain32():
        ep = fir_epochs(data, sf, 8.0, 30.0, events, 0.0, 4.0, dtype="float32")
        return euclidean_alignment(ep, inplace=True)[0]

    def chain_steps():
        x = fir_filter(data, sf, 8.0, 30.0)
        return euclidean_alignment(epochs_from_events(x, events, sf, 0.0, 4.0))[0]

    def chain_iir():
        x = iir_filter(data, sf, 8.0, 30.0)
        return euclidean_alignment(epochs_from_events(x, events, sf, 0.0, 4.0), inplace=True)[0]

    epochs = epochs_from_events(data, events, sf, 0.0, 4.0)

    def chain_mne():
        x = mne.filter.filter_data(data, sf, 8.0, 30.0)
        raw = mne.io.RawArray(x, info)
        ep = mne.Epochs(raw, events, tmin=0.0, tmax=4.0, baseline=None, preload=True).get_data()
        return numpy_ea(ep)

    ref_out = chain_mne()
    scale = np.abs(ref_out).max()
    diff64 = np.abs(chain64() - ref_out).max() / scale
    diff32 = np.abs(chain32() - ref_out).max() / scale
    tools = {
        CHAIN64: chain64,
        CHAIN32: chain32,
        "sigattn, separate steps: fir_filter + epochs_from_events + EA": chain_steps,
        "sigattn, IIR band-pass instead of FIR (not the same filter)": chain_iir,
        MNE_CHAIN: chain_mne,
        "sigattn fir_filter alone": lambda: fir_filter(data, sf, 8.0, 30.0),
        "sigattn fir_filter alone, float32 compute": lambda: fir_filter(data, sf, 8.0, 30.0, dtype="float32"),
        "MNE filter_data alone": lambda: mne.filter.filter_data(data, sf, 8.0, 30.0),
        "NumPy EA alone (the MNE chain's)": lambda: numpy_ea(epochs),
        "sigattn EA alone (in place, float64)": lambda: euclidean_alignment(epochs.copy(), inplace=True),
        "copy of the epochs (subtract from the row above)": lambda: epochs.copy(),
    }
    rates = {}
    for n in threads:
        set_threads(n)
        for name, fn in tools.items():
            rates[(name, n)] = seconds / best_time(fn, repeats)
    ref = MNE_CHAIN

    def ref_of(name: str) -> str:
        filters_alone = "alone" in name and ("fir_filter" in name or "filter_data" in name)
        return "MNE filter_data alone" if filters_alone else ref

    rows = [
        [name]
        + [rates[(name, n)] for n in threads]
        + [rates[(name, n)] / rates[(ref_of(name), n)] for n in threads]
        for name in tools
    ]
    hdr = ["chain"] + [f"rec-s/s, {n} thr" for n in threads] + [f"x MNE, {n} thr" for n in threads]
    md = (
        f"**EEG chain**, {n_ch} channels x {seconds:g} s at {sf:g} Hz, {len(events)} epochs of 0-4 s, "
        f"best of {repeats}. Max relative difference of the aligned epochs vs the MNE chain: float64 "
        f"{diff64:.1e}, float32 compute {diff32:.1e}. The MNE chain runs in float64 (MNE's filters take "
        "float64 only):\n\n"
    )
    md += markdown_table(hdr, rows)
    md += "\n\n(The FIR rows' ratios are to `filter_data` alone; the other rows' to the MNE chain.)"
    return md, {f"eeg64_vs_mne_{n}thr": rates[(CHAIN64, n)] / rates[(ref, n)] for n in threads} | {
        f"eeg32_vs_mne_{n}thr": rates[(CHAIN32, n)] / rates[(ref, n)] for n in threads
    } | {
        "fir_vs_mne_1thr": rates[("sigattn fir_filter alone", 1)] / rates[("MNE filter_data alone", 1)],
    }


FIRST_CALL = (
    "import time; t0 = time.perf_counter(); import sigattn.features as f; t1 = time.perf_counter(); "
    "f.warmup(); t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def bench_first_call() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold cache", "warm cache"):
            out = subprocess.run(
                [sys.executable, "-c", FIRST_CALL],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            imp, warm = (float(v) for v in out.stdout.split())
            rows.append([label, imp, warm])
    md = "**First call** (fresh process: `import sigattn.features`, then `warmup()` runs every kernel once):\n\n"
    return md + markdown_table(["Numba cache", "import s", "warmup s"], rows)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short signals and few repeats (a smoke run)")
    return add_write_flag(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    if args.quick:
        audio_s, eeg_s, reps = 10.0, 60.0, 3
    else:
        audio_s, eeg_s, reps = 60.0, 600.0, 7
    parts = [f"Machine: {machine()}. Mode: {'quick' if args.quick else 'full'}.\n"]
    md_fb, s1 = bench_fbank(audio_s, reps, threads)
    md_eeg, s2 = bench_eeg(eeg_s, reps, threads)
    parts += [md_fb, md_eeg, bench_first_call()]
    summary = {**s1, **s2}
    parts.append(
        "Targets: fbank >= 3x torchaudio on one core (measured "
        f"{summary['fbank_vs_torchaudio_1thr']:.2f}x) and >= 50% of the FFT-only bound (measured "
        f"{100 * summary['fbank_of_fft_bound_1thr']:.0f}%); EEG chain >= 5x MNE (measured, one thread / "
        f"{threads[-1]} threads: float64 {summary['eeg64_vs_mne_1thr']:.2f}x / "
        f"{summary[f'eeg64_vs_mne_{threads[-1]}thr']:.2f}x, float32 compute "
        f"{summary['eeg32_vs_mne_1thr']:.2f}x / {summary[f'eeg32_vs_mne_{threads[-1]}thr']:.2f}x; FIR alone "
        f"{summary['fir_vs_mne_1thr']:.2f}x `filter_data`)."
    )
    md = "## Features (`benchmarks/features.py`)\n\n" + "\n\n".join(parts)
    publish("features", md, args.write)


if __name__ == "__main__":
    main()
