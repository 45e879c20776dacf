"""Cost of each channel-attention layer inside a Conv1d block, forward + backward, as a ratio to the block alone.

    python benchmarks/layers.py [--quick] [--no-compile-check] [--threads N] [--clock cpu|wall] [--write]

The block is ``Conv1d(C, C, 3) -> BatchNorm1d -> ReLU`` on ``(B, C, T) = (32, 512, 200)`` (``--quick``: 8, 512,
100). Gates (SE, ECA, CBAM, parameter-guided) follow the block; the pooling layers are compared with the
pooling they replace (``asp`` with plain mean+std pooling, ``channel_pool`` with a mean over channel tokens,
``channel_select`` with a mean over 8 microphones of 64 features). SpeechBrain's ``SEBlock`` and
``AttentiveStatisticsPooling`` run side by side as the tools a user would otherwise pick. Each configuration is
timed right after its baseline, round by round, and the median of those paired ratios is reported, so load
from other processes hits both alike. Times are process CPU time on one thread by default (stable on a
shared machine); ``--threads``/``--clock wall`` change that. ``--no-compile-check`` skips compiling every
layer with Inductor and comparing with eager.

Prints a markdown report; ``--write`` also writes it as the "layers" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import add_write_flag, machine, markdown_table, publish  # noqa: E402
from sigattn.layers import create_channel_attention  # noqa: E402

# Process CPU time by default: on a shared machine it counts this process's work, not the time it waits for
# a core (wall time swings by 2x or more there). ``--clock wall`` for wall time on a quiet machine.
CLOCK = [time.process_time]


class Block(nn.Module):
    """Conv1d block followed by an optional head (attention layer or the pooling it replaces)."""

    def __init__(self, channels: int, head: nn.Module | None = None, kind: str = "gate") -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.ReLU()
        self.head = head
        self.kind = kind

    def forward(self, x, lengths=None, params=None):
        h = self.act(self.norm(self.conv(x)))
        if self.head is None:
            return h
        if self.kind == "param":
            return self.head(h, params, lengths)
        if self.kind == "sb":  # SpeechBrain takes relative lengths
            rel = None if lengths is None else lengths.to(h.dtype) / h.shape[-1]
            return self.head(h, rel)
        if self.kind == "tokens":
            return self.head(h)
        if self.kind == "mics":
            b, c, t = h.shape
            return self.head(h.reshape(b, 8, c // 8, t))
        return self.head(h, lengths)


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x, lengths=None):
        return self.fn(x)


def configs(c: int, t: int) -> list[tuple[str, str, nn.Module]]:
    """(name, baseline name, module) triples."""
    mk = create_channel_attention
    rows = [
        ("block alone", "block alone", Block(c)),
        ("+ SqueezeExcite (r=128)", "block alone", Block(c, mk("se", c, rd_channels=128))),
        ("+ SqueezeExcite (1/16)", "block alone", Block(c, mk("se", c))),
        ("+ ECA (k=5)", "block alone", Block(c, mk("eca", c))),
        ("+ CBAMChannel", "block alone", Block(c, mk("cbam", c))),
        ("+ ParameterGuided (P=4)", "block alone", Block(c, mk("param_guided", c, param_dim=4), "param")),
        (
            "+ mean/std pool",
            "+ mean/std pool",
            Block(c, Lambda(lambda h: torch.cat([h.mean(-1), h.std(-1)], 1))),
        ),
        ("+ AttentiveStatsPool", "+ mean/std pool", Block(c, mk("asp", c))),
        ("+ mean over tokens", "+ mean over tokens", Block(c, Lambda(lambda h: h.mean(1)), "tokens")),
        ("+ ChannelAttentionPool", "+ mean over tokens", Block(c, mk("channel_pool", t), "tokens")),
        ("+ mean over 8 mics", "+ mean over 8 mics", Block(c, Lambda(lambda h: h.mean(1)), "mics")),
        ("+ ChannelSelect (k=1)", "+ mean over 8 mics", Block(c, mk("channel_select", c // 8), "mics")),
    ]
    try:
        from speechbrain.lobes.models.ECAPA_TDNN import AttentiveStatisticsPooling, SEBlock

        rows.insert(3, ("+ SpeechBrain SEBlock (128)", "block alone", Block(c, SEBlock(c, 128, c), "sb")))
        rows.insert(
            9, ("+ SpeechBrain ASP", "+ mean/std pool", Block(c, AttentiveStatisticsPooling(c), "sb"))
        )
    except ImportError:
        print("speechbrain not installed: its rows are left out", file=sys.stderr)
    return rows


def step(model: nn.Module, x: torch.Tensor, lengths, params) -> None:
    model.zero_grad(set_to_none=True)
    out = model(x, lengths, params)
    out.float().square().mean().backward()


def measure(b: int, c: int, t: int, rounds: int, masked: bool) -> dict[str, tuple[float, float, float]]:
    """Per configuration: best seconds, ratio of best times to its baseline's, median of paired ratios.

    Interference from other processes only adds time, so the best of several rounds is the most stable
    estimate on a shared machine; the median of the ratios to the baseline timed just before each run is
    shown beside it, and "block alone" against itself shows the noise floor of the paired ratio.
    """
    torch.manual_seed(0)
    rows = configs(c, t)
    models = {name: model for name, _, model in rows}
    x = torch.randn(b, c, t)
    lengths = torch.randint(t // 2, t + 1, (b,)) if masked else None
    if lengths is not None:
        lengths[0] = t
    params = torch.randn(b, 4)

    def timed(model: nn.Module) -> float:
        ln = lengths if model.kind not in ("tokens", "mics") else None
        t0 = CLOCK[0]()
        step(model, x, ln, params)
        return CLOCK[0]() - t0

    for model in models.values():  # warm-up
        timed(model)
    best = {name: float("inf") for name in models}
    paired: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, base, model in rows:
            tb = timed(models[base])  # paired: the baseline right before, so both see the same load
            tc = timed(model)
            best[base] = min(best[base], tb)
            best[name] = min(best[name], tc)
            paired[name].append(tc / tb)
    base_of = {name: base for name, base, _ in rows}
    return {
        name: (best[name], best[name] / best[base_of[name]], statistics.median(paired[name]))
        for name in models
    }


def compile_check(c: int = 64, t: int = 50) -> list[list[object]]:
    """Compile every registered layer with Inductor; max abs difference to eager and compile seconds."""
    from sigattn.layers import CHANNEL_ATTENTION

    inputs = {
        "channel_pool": lambda: (torch.randn(4, 6, c), torch.tensor([6, 3, 5, 1])),
        "channel_select": lambda: (torch.randn(4, 6, c, t), torch.tensor([t, 9, 20, 1])),
        "param_guided": lambda: (torch.randn(4, c, t), torch.randn(4, 3), torch.tensor([t, 9, 20, 1])),
    }
    kwargs = {"param_guided": {"param_dim": 3, "zero_init": False}}
    out = []
    for name in sorted(CHANNEL_ATTENTION):
        torch._dynamo.reset()
        layer = create_channel_attention(name, c, **kwargs.get(name, {})).eval()
        args = inputs.get(name, lambda: (torch.randn(4, c, t), torch.tensor([t, 9, 20, 1])))()
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                got = torch.compile(layer, fullgraph=True)(*args)
                diff = float((got - layer(*args)).abs().max())
            out.append(
                [name, "ok" if diff < 1e-4 else "MISMATCH", f"{diff:.1e}", round(time.perf_counter() - t0, 1)]
            )
        except Exception as e:  # report, do not hide
            out.append([name, f"FAILED: {type(e).__name__}", "-", round(time.perf_counter() - t0, 1)])
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small batch, few rounds")
    ap.add_argument("--no-compile-check", action="store_true", help="skip the Inductor compile check")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's choice)")
    ap.add_argument(
        "--clock", choices=["cpu", "wall"], default="cpu", help="process CPU time (default) or wall"
    )
    return add_write_flag(ap)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.clock == "wall":
        CLOCK[0] = time.perf_counter
    b, c, t, rounds = (8, 512, 100, 7) if a.quick else (32, 512, 200, 15)
    full = measure(b, c, t, rounds, masked=False)
    masked = measure(b, c, t, rounds, masked=True)
    rows = []
    for name, _, _ in configs(c, t):
        (f_ms, f_ratio, f_paired), (m_ms, m_ratio, m_paired) = full[name], masked[name]
        rows.append([name, f_ms * 1e3, f_ratio, f_paired, m_ms * 1e3, m_ratio, m_paired])
    headers = ["layer", "ms", "ratio", "paired ratio", "ms, lengths", "ratio", "paired ratio"]
    table = markdown_table(headers, rows)
    md = (
        "## Layers: forward + backward cost inside a Conv1d block\n\n"
        f"Machine: {machine()}; {torch.get_num_threads()} torch thread(s); clock: "
        f"{'process CPU time' if a.clock == 'cpu' else 'wall time'}.\n\n"
        f"`python benchmarks/layers.py{' --quick' if a.quick else ''}`: B={b}, C={c}, T={t}, float32, {rounds} rounds; "
        "ms = best time over the rounds; ratio = best time / best time of its baseline (the block alone for gates, "
        "the pooling it replaces for pools); paired ratio = median over rounds of time / time of the baseline run "
        "just before it ('block alone' against itself shows its noise). Block = Conv1d(C, C, 3) + BatchNorm1d + "
        "ReLU. 'lengths' columns pass "
        "random valid lengths in [T/2, T] (masked statistics).\n\n" + table + "\n"
    )
    if not a.no_compile_check:
        cc = compile_check()
        md += (
            "\nInductor (`torch.compile(fullgraph=True)`) on every registered layer, C=64, T=50, masked: max abs "
            "difference to eager and seconds to compile and run once.\n\n"
            + markdown_table(["layer", "compile", "max abs diff", "s"], cc)
            + "\n"
        )
    publish("layers", md, a.write)


if __name__ == "__main__":
    main()
