"""Shared checks for the layer tests (not collected: leading underscore)."""

from __future__ import annotations

import torch
from torch import Tensor


def padded_batch(items: list[Tensor], pad_value: float = 1e4) -> tuple[Tensor, Tensor]:
    """Stack ``(C, T_i)`` items into ``(B, C, T_max)`` padded with a loud value, plus ``lengths``."""
    t_max = max(int(x.shape[-1]) for x in items)
    out = torch.full((len(items), items[0].shape[0], t_max), pad_value, dtype=items[0].dtype)
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = x
    return out, torch.tensor([x.shape[-1] for x in items])


def assert_batch_equals_items(layer, items: list[Tensor], time_output: bool, atol: float = 1e-5) -> None:
    """A padded batch with ``lengths`` gives, per item, what the item gives alone (torchaudio-style)."""
    x, lengths = padded_batch(items)
    with torch.no_grad():
        batched = layer(x, lengths=lengths)
        for i, item in enumerate(items):
            alone = layer(item.unsqueeze(0))[0]
            got = batched[i, ..., : item.shape[-1]] if time_output else batched[i]
            torch.testing.assert_close(got, alone, atol=atol, rtol=1e-5)


def assert_grads_reach_all(layer, *inputs, inert: tuple[str, ...] = ()) -> None:
    """Backward through a random projection of the output reaches every parameter with a nonzero grad.

    ``inert`` names parameters the output provably does not depend on (e.g. a bias added to every score
    before a softmax): their gradient must be zero up to rounding instead.
    """
    out = layer(*inputs)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert bool(torch.isfinite(p.grad).all()), f"non-finite gradient for {name}"
        if name in inert:
            assert float(p.grad.abs().max()) <= 1e-6, f"{name} should not affect the output"
        else:
            assert float(p.grad.abs().sum()) > 0, f"zero gradient for {name}"


def n_params(layer) -> int:
    return sum(p.numel() for p in layer.parameters())
