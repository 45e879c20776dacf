"""ECAPA's block attention is a choice (DESIGN.md "Attention is a choice, not a hard-wire"), in both layouts.

Compared against: parameter counts written out from each layer's formula (not read from the code under
test), the default models' state_dict keys and seeded initial weights as the code produced them before the
choice existed (hard-coded below), and each item's single-utterance embedding for exact masking.
"""

import hashlib

import pytest
import torch
from torch import Tensor, nn

from sigattn.layers import CHANNEL_ATTENTION, register_channel_attention
from sigattn.layers._masking import lengths_to_mask, masked_mean
from sigattn.models.ecapa import ECAPATDNN, NoAttention, block_attention_names, ecapa_c512
from sigattn.models.ecapa_speechbrain import SpeechBrainECAPA

C, MFA, EMB, SE, ATT = 32, 48, 16, 8, 8  # small models: 3 SE-Res2Blocks of width C in both layouts
N_BLOCKS = 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


class MeanGate(nn.Module):
    """A user's gate: ``y = x * sigmoid(w * masked_mean(x) + b)``, per channel; 2C parameters."""

    def __init__(self, channels: int, init: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((channels,), 1.0))
        self.b = nn.Parameter(torch.full((channels,), init))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        z = masked_mean(x, lengths_to_mask(lengths, x.shape[-1], x)).squeeze(-1)
        return x * torch.sigmoid(self.w * z + self.b).unsqueeze(-1)


class Pools(nn.Module):
    """A registered layer that is not a gate: it pools time away."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return x.mean(-1)


@pytest.fixture
def user_layers():
    register_channel_attention("test_mean_gate", MeanGate)
    register_channel_attention("test_pools", Pools)
    try:
        yield
    finally:
        del CHANNEL_ATTENTION["test_mean_gate"], CHANNEL_ATTENTION["test_pools"]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def gate_params(name: str, c: int = C, se: int = SE) -> int:
    """One block's gate, from the papers' formulas: SE ``2Cr + r + C`` (biases), ECA ``k`` with ``k`` the
    odd number nearest ``(log2 C + 1) / 2`` (3 for C=32, 5 for C=512), CBAM ``2Cr`` with ``r = C / 16`` and
    no bias (timm's ChannelAttn), the test's MeanGate ``2C``, none 0."""
    k = {32: 3, 512: 5}[c]
    return {
        "se": 2 * c * se + se + c,
        "eca": k,
        "cbam": 2 * c * (c // 16),
        "test_mean_gate": 2 * c,
        "none": 0,
    }[name]


def paper(attention="se", **kw):
    return ECAPATDNN(channels=C, mfa_channels=MFA, embed_dim=EMB, se_channels=SE, attention_channels=ATT,
                     attention=attention, **kw)  # fmt: skip


def speechbrain(attention="se", **kw):
    return SpeechBrainECAPA(80, lin_neurons=EMB, channels=[C] * 4 + [MFA], attention_channels=ATT,
                            se_channels=SE, attention=attention, **kw)  # fmt: skip


LAYOUTS = {"paper": (paper, "se"), "speechbrain": (speechbrain, "se_block")}
CHOICES = ["se", "eca", "cbam", "none", "test_mean_gate"]


def gates(model: nn.Module, attr: str) -> list[nn.Module]:
    return [getattr(b, attr) for b in model.blocks if hasattr(b, attr)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("attention", CHOICES)
def test_one_training_step_and_parameter_counts(layout, attention, user_layers):
    build, attr = LAYOUTS[layout]
    torch.manual_seed(0)
    model = build(attention).train()
    expected_gate = {"se": "SqueezeExcite", "eca": "ECA", "cbam": "CBAMChannel", "none": "NoAttention"}
    assert [type(g).__name__ for g in gates(model, attr)] == [expected_gate.get(attention, "MeanGate")] * 3
    assert n_params(model) == n_params(build("none")) + N_BLOCKS * gate_params(attention)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 80, 40)
    out = model(x, torch.tensor([40, 33, 40, 21]))
    assert out.shape == (4, EMB)
    before = [p.detach().clone() for g in gates(model, attr) for p in g.parameters()]
    out.pow(2).mean().backward()
    opt.step()
    after = [p.detach() for g in gates(model, attr) for p in g.parameters()]
    if attention == "none":
        assert before == []
    else:  # every gate parameter got a gradient and moved
        assert len(before) == len(after) > 0
        assert all(not torch.equal(a, b) for a, b in zip(before, after)), "the gate must be trained"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _random_bn_stats(model: nn.Module) -> None:
    for mod in model.modules():  # non-trivial BN statistics so that masking errors would show
        if isinstance(mod, nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("attention", CHOICES)
def test_padded_batch_equals_single_utterances(layout, attention, user_layers):
    build, attr = LAYOUTS[layout]
    torch.manual_seed(1)
    model = build(attention)
    _random_bn_stats(model)
    for g in gates(model, attr):  # default inits give gates near 0.5; sharpen them so a masking slip shows
        for p in g.parameters():
            if p.dim() > 1:  # convolution weights (SE, CBAM, ECA's kernel)
                p.data.mul_(4.0)
            else:  # biases, MeanGate's w and b
                p.data.uniform_(-3.0, 3.0)
    model.eval()
    lengths = torch.tensor([60, 41, 17, 9])
    x = torch.randn(4, 80, 60)
    x_garbage = x.clone()
    for b, n in enumerate(lengths):
        x_garbage[b, :, n:] = 1e3 * torch.randn(80, 60 - int(n))  # padding content must not matter
    with torch.no_grad():
        batched = model(x_garbage, lengths)
        for b, n in enumerate(lengths):
            single = model(x[b : b + 1, :, :n])
            torch.testing.assert_close(batched[b : b + 1], single, atol=1e-5, rtol=1e-5)


# Taken from the code before `attention=` existed (commit b21b2b3): sha256 of "key:shape" lines of the
# default state_dicts, their lengths, a sample of key names, and three sums of a seed-0 small model's weights.
PAPER_C512_SHA = "dcaf620bb50b29c4b334face50baedafd04d862731b0b07bf0d0bd45dcc5334a"
SPEECHBRAIN_SHA = "035f39e257969fe5537f332bdc2aa1f615ed41dda0e89c9d134eb5dca240a1bd"
PAPER_KEYS = ["layer1.conv.weight", "blocks.0.tdnn1.conv.weight", "blocks.0.res2net.blocks.6.norm.running_var",
              "blocks.0.se.fc1.weight", "blocks.0.se.fc1.bias", "blocks.0.se.fc2.weight", "blocks.2.se.fc2.bias",
              "mfa.weight", "pool.tdnn.0.weight", "pool.conv.bias", "pool_bn.num_batches_tracked", "fc.weight"]  # fmt: skip
SPEECHBRAIN_KEYS = ["blocks.0.conv.weight", "blocks.1.tdnn1.conv.weight", "blocks.1.se_block.fc1.weight",
                    "blocks.1.se_block.fc1.bias", "blocks.3.se_block.fc2.weight", "blocks.3.se_block.fc2.bias",
                    "mfa.conv.weight", "asp.tdnn.2.running_mean", "asp.conv.weight", "asp_bn.weight", "fc.weight"]  # fmt: skip


def _sha(model: nn.Module) -> str:
    lines = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return hashlib.sha256(lines.encode()).hexdigest()


def test_default_models_are_todays():
    paper_model, sb_model = ecapa_c512(), SpeechBrainECAPA()
    assert len(paper_model.state_dict()) == 221 and _sha(paper_model) == PAPER_C512_SHA
    assert len(sb_model.state_dict()) == 231 and _sha(sb_model) == SPEECHBRAIN_SHA
    assert set(PAPER_KEYS) <= set(paper_model.state_dict())
    assert set(SPEECHBRAIN_KEYS) <= set(sb_model.state_dict())
    assert n_params(paper_model) == 6_190_720 and n_params(sb_model) == 6_194_048
    # explicit "se" and its alias are the default, key for key
    assert _sha(ecapa_c512(attention="se")) == _sha(ecapa_c512(attention="Squeeze_Excite")) == PAPER_C512_SHA
    # choosing the gate draws no extra random numbers: a seeded default model initialises as before
    torch.manual_seed(0)
    state = paper().state_dict()
    sums = {
        k: float(state[k].double().sum()) for k in ("blocks.2.se.fc2.weight", "pool.conv.weight", "fc.weight")
    }
    assert sums == pytest.approx(
        {"blocks.2.se.fc2.weight": -0.212665, "pool.conv.weight": 11.240375, "fc.weight": -0.785803}, abs=1e-5
    )


def test_c512_counts_per_attention():
    """At C=512: ``none`` has exactly the three SE gates (2*512*128 + 128 + 512 each) fewer; ECA adds 3 x 5."""
    se_gate = 2 * 512 * 128 + 128 + 512
    assert n_params(ecapa_c512(attention="none")) == 6_190_720 - 3 * se_gate == 5_795_584
    assert n_params(ecapa_c512(attention="eca")) == 5_795_584 + 3 * 5


def test_attention_kwargs(user_layers):
    without = n_params(paper("none"))
    assert n_params(paper("se", attention_kwargs={"rd_channels": 4})) == without + 3 * (2 * C * 4 + 4 + C)
    cbam = paper("cbam", attention_kwargs={"rd_channels": 8, "bias": True})
    assert n_params(cbam) == without + 3 * (2 * C * 8 + 8 + C)
    assert paper("eca", attention_kwargs={"kernel_size": 7}).blocks[0].se.kernel_size == 7
    assert speechbrain("test_mean_gate", attention_kwargs={"init": 2.0}).blocks[1].se_block.b[0] == 2.0
    with pytest.raises(TypeError, match=r"attention='eca' with attention_kwargs=\{'rd_channels': 4\}"):
        paper("eca", attention_kwargs={"rd_channels": 4})
    with pytest.raises(TypeError, match="attention='none' takes no attention_kwargs"):
        speechbrain("none", attention_kwargs={"rd_channels": 4})
    with pytest.raises(TypeError, match="attention_kwargs must be a dict"):
        paper("se", attention_kwargs=[("rd_channels", 4)])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unknown_and_refused_names(layout, user_layers):
    build, attr = LAYOUTS[layout]
    owner = "ECAPATDNN" if layout == "paper" else "SpeechBrainECAPA"
    with pytest.raises(
        ValueError, match=rf"{owner}: unknown attention 'ecaa'; valid names: cbam, eca, none, se"
    ):
        build("ecaa")
    with pytest.raises(ValueError) as info:
        build("ecaa")
    listed = str(info.value).split("valid names: ")[1].replace(" (aliases: ", ", ").rstrip(")").split(", ")
    assert {"test_mean_gate", "squeeze_excite", "cbam_channel"} <= set(listed)  # user layers and aliases too
    assert not {"asp", "channel_pool", "channel_select", "param_guided", "cape"} & set(
        listed
    )  # not the pools
    for name in ("asp", "channel_pool", "channel_select", "param_guided", "cape"):
        with pytest.raises(ValueError, match=r"is not a \(B, C, T\) -> \(B, C, T\) channel gate") as info:
            build(name)
        assert f"attention {name!r}" in str(info.value)
    with pytest.raises(TypeError, match="attention must be a str"):
        build(None)
    assert type(gates(build("ECA"), attr)[0]).__name__ == "ECA"  # case-insensitive, like the registry


def test_registered_layer_that_pools_is_refused_at_forward(user_layers):
    """A user's layer cannot be known to pool before it runs: it builds, and its first forward says so."""
    model = paper("test_pools")
    with pytest.raises(
        ValueError, match=r"block attention Pools must return its input's shape \(2, 32, 20\)"
    ):
        model(torch.randn(2, 80, 20))


def test_names_and_no_attention():
    assert block_attention_names()[:4] == ["cbam", "eca", "none", "se"]
    gate = NoAttention()
    x = torch.randn(2, 3, 5)
    assert gate(x, torch.tensor([5, 2])) is x and n_params(gate) == 0
