"""Every registered layer is built by name and put through the same checks (braindecode-style completeness).

Checks per layer: output and attention shapes, gradients to every parameter, float32/bfloat16/float16,
TorchScript, ``torch.export`` and ``torch.compile`` (``aot_eager`` backend, ``fullgraph=True``: Dynamo
capture and AOTAutograd without Inductor's C++ build, which costs ~35 s per process on CPU; the benchmark
script compiles every layer with Inductor) agree with eager, and the opt-in NaN check.
"""

from __future__ import annotations

import pytest
import torch
from _layer_checks import assert_grads_reach_all

from sigattn.layers import CHANNEL_ATTENTION, create_channel_attention, set_finite_check

B, C, T = 3, 16, 12
LENGTHS = torch.tensor([12, 7, 3])

# name -> (channels, constructor kwargs, inputs(dtype) -> args, output shape, attention shape, softmax axis)
CASES = {
    "se": (C, {"rd_channels": 4}, lambda: (torch.randn(B, C, T), LENGTHS), (B, C, T), (B, C), None),
    "eca": (C, {}, lambda: (torch.randn(B, C, T), LENGTHS), (B, C, T), (B, C), None),
    "cbam": (C, {"rd_channels": 4}, lambda: (torch.randn(B, C, T), LENGTHS), (B, C, T), (B, C), None),
    "asp": (C, {"attention_channels": 8}, lambda: (torch.randn(B, C, T), LENGTHS), (B, 2 * C), (B, C, T), -1),
    "channel_pool": (8, {}, lambda: (torch.randn(B, 5, 8), torch.tensor([5, 2, 4])), (B, 8), (B, 5), -1),
    "channel_select": (
        4,
        {"k": 2},
        lambda: (torch.randn(B, 6, 4, T), LENGTHS, torch.tensor([6, 3, 5])),
        (B, 2, 4, T),
        (B, 6),
        -1,
    ),
    "param_guided": (
        C,
        {"param_dim": 3, "zero_init": False},
        lambda: (torch.randn(B, C, T), torch.randn(B, 3), LENGTHS),
        (B, C, T),
        (B, C),
        None,
    ),
}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    channels, kwargs, *_ = CASES[name]
    layer = create_channel_attention(name, channels, **kwargs)
    if name == "asp":
        layer.eval()  # BatchNorm: running statistics, so masking is exact and the batch does not matter
    return layer


def cast(args: tuple, dtype: torch.dtype) -> tuple:
    return tuple(a.to(dtype) if a.dtype.is_floating_point else a for a in args)


def test_registry_is_complete():
    assert set(CASES) == set(CHANNEL_ATTENTION), "every registered layer needs a test case here"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*asp.*eca.*se"):
        create_channel_attention("squeeze", 16)
    assert (
        type(create_channel_attention("CAPE", 16, param_dim=2)).__name__ == "ParameterGuidedChannelAttention"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_and_attention(name):
    layer = build(name)
    _, _, make, out_shape, att_shape, softmax_axis = CASES[name]
    args = make()
    assert tuple(layer(*args).shape) == out_shape
    att = layer.attention(*args)
    assert tuple(att.shape) == att_shape
    if softmax_axis is not None:
        torch.testing.assert_close(att.sum(softmax_axis), torch.ones(att.sum(softmax_axis).shape))
    else:
        assert float(att.min()) >= 0.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_reach_every_parameter(name):
    layer = build(name)
    layer.train(name != "asp")
    # channel_pool's score bias is added to every channel's score before a softmax: no gradient by design
    inert = ("score.bias",) if name == "channel_pool" else ()
    assert_grads_reach_all(layer, *CASES[name][2](), inert=inert)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(CASES))
def test_low_precision(name, dtype):
    layer = build(name)
    args = CASES[name][2]()
    expected = layer(*args)
    out = layer.to(dtype)(*cast(args, dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("name", sorted(CASES))
def test_torchscript_matches_eager(name):
    layer = build(name).eval()
    args = CASES[name][2]()
    scripted = torch.jit.script(layer)
    torch.testing.assert_close(scripted(*args), layer(*args))
    torch.testing.assert_close(scripted.attention(*args), layer.attention(*args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_matches_eager(name):
    layer = build(name).eval()
    args = CASES[name][2]()
    exported = torch.export.export(layer, args)
    torch.testing.assert_close(exported.module()(*args), layer(*args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_compile_matches_eager(name):
    torch._dynamo.reset()
    layer = build(name)
    args = CASES[name][2]()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(*args), layer(*args), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_nan_check_is_opt_in(name):
    layer = build(name)
    args = list(CASES[name][2]())
    args[0] = args[0].clone()
    args[0][0, 0, 0] = float("nan")
    layer(*args)  # off by default: no sync, NaN propagates
    previous = set_finite_check(True)
    try:
        with pytest.raises(ValueError, match=r"NaN/Inf, first at index \(0, 0, 0"):
            layer(*args)
    finally:
        set_finite_check(previous)
