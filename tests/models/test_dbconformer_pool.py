"""DBConformer's spatial pool as a choice (issue #13): channel_pool (the paper), mean, or a registered pool."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sigattn.layers import CHANNEL_ATTENTION, ChannelAttentionPool, register_channel_attention
from sigattn.models.dbconformer import DBConformer

KW = dict(n_chans=6, n_outputs=3, n_times=96, sfreq=48)  # small: 16 tokens of 6 samples, D = 40
D = 40


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()  # tiny models: OpenMP threads spin badly when the CPU is shared
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class QueryPool(nn.Module):
    """A token pool unlike ChannelAttentionPool: ``alpha = softmax_c(q . h_c / sqrt(D))``, ``sum_c alpha_c V h_c``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(channels))
        self.value = nn.Linear(channels, channels)

    def attention(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(tokens @ self.query / math.sqrt(tokens.shape[-1]), dim=-1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("bc,bcd->bd", self.attention(tokens), self.value(tokens))


class NoWeightsPool(nn.Module):
    """Maps tokens to (B, D) but has no ``attention``: DBConformer cannot report its channel weights."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.amax(dim=1)


class TokenwiseGate(nn.Module):
    """Has ``attention`` but returns gated tokens (B, C, D), not a pooled vector."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def attention(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.softmax(tokens.mean(-1), dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens * self.attention(tokens)[..., None]


@pytest.fixture
def registered():
    """Registers QueryPool as ``test_query_pool`` (and two unfit layers) for one test, then removes them."""
    names = {"test_query_pool": QueryPool, "test_no_weights_pool": NoWeightsPool, "test_gate": TokenwiseGate}
    for name, cls in names.items():
        register_channel_attention(name, cls)
    try:
        yield "test_query_pool"
    finally:
        for name in names:
            CHANNEL_ATTENTION.pop(name, None)


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _spatial_tokens(m: DBConformer, x: torch.Tensor) -> torch.Tensor:
    """The spatial encoder's output tokens (B, C, D) of one forward, caught with a hook."""
    seen = []
    hook = m.spatial_encoder.register_forward_hook(lambda mod, args, out: seen.append(out.detach().clone()))
    try:
        m(x)
    finally:
        hook.remove()
    return seen[0]


def test_default_is_todays_model():
    # measured on the model before spatial_pool existed (commit b21b2b3): 93,747 parameters, 92 state_dict keys
    m = DBConformer(n_chans=22, n_outputs=2, n_times=1001, sfreq=250)
    assert _count(m) == 93_747 and len(m.state_dict()) == 92
    assert m.spatial_pool == "channel_pool" and isinstance(m.channel_pool, ChannelAttentionPool)
    assert {k for k in m.state_dict() if k.startswith("channel_pool.")} == {
        "channel_pool.proj.weight", "channel_pool.proj.bias", "channel_pool.score.weight", "channel_pool.score.bias"
    }  # fmt: skip
    assert _count(DBConformer(n_chans=59, n_outputs=2, n_times=750, sfreq=250)) == 96_627
    # naming the default (or its registry alias) builds the same model, initial weights bit for bit
    for name in ("channel_pool", "channel_attention_pool", "Channel_Pool"):
        torch.manual_seed(0)
        ref = DBConformer(**KW).state_dict()
        torch.manual_seed(0)
        got = DBConformer(**KW, spatial_pool=name).state_dict()
        assert list(got) == list(ref)
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)


def test_mean_has_exactly_the_channel_pools_parameters_fewer():
    # ChannelAttentionPool(D) with H = D: W1 (D*H) + b1 (H) + w2 (H) + b2 (1)
    for emb_size, n_heads in ((40, 10), (16, 4)):
        pool_params = emb_size * emb_size + emb_size + emb_size + 1
        kw = dict(n_chans=22, n_outputs=2, n_times=1001, sfreq=250, emb_size=emb_size, n_heads=n_heads)
        ref, mean = DBConformer(**kw), DBConformer(**kw, spatial_pool="mean")
        assert _count(ref) - _count(mean) == pool_params
        assert mean.channel_pool is None and mean.spatial_pool == "mean"
        assert set(ref.state_dict()) - set(mean.state_dict()) == {
            "channel_pool.proj.weight", "channel_pool.proj.bias", "channel_pool.score.weight", "channel_pool.score.bias"
        }  # fmt: skip
        assert set(mean.state_dict()) < set(ref.state_dict())
    assert (
        _count(DBConformer(n_chans=22, n_outputs=2, n_times=1001, sfreq=250, spatial_pool="mean")) == 92_066
    )


@pytest.mark.parametrize("pool", ["channel_pool", "mean", "registered"])
def test_one_training_step(pool, registered):
    name = registered if pool == "registered" else pool
    torch.manual_seed(0)
    m = DBConformer(**KW, spatial_pool=name, dropout=0.1)
    if pool == "registered":
        assert isinstance(m.channel_pool, QueryPool) and m.spatial_pool == registered
        assert _count(m) == _count(DBConformer(**KW, spatial_pool="mean")) + D + D * D + D
    before = {k: v.detach().clone() for k, v in m.named_parameters()}
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x, y = torch.randn(4, 6, 96), torch.tensor([0, 1, 2, 0])
    loss = nn.functional.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    # the spatial branch learns through the pool; the pool's own weights learn (b2 of ChannelAttentionPool
    # shifts every score alike, so it gets no gradient by design; see the layer)
    trained = ["spatial_pos", "spatial_embed.4.weight", "head.0.weight"]
    trained += [
        k for k, _ in m.named_parameters() if k.startswith("channel_pool.") and k != "channel_pool.score.bias"
    ]
    assert (pool == "mean") == (len(trained) == 3)
    params = dict(m.named_parameters())
    for k in trained:
        assert params[k].grad.abs().sum() > 0 and not torch.equal(params[k].detach(), before[k]), k


def test_mean_pool_is_the_mean_of_the_spatial_tokens():
    torch.manual_seed(0)
    m = DBConformer(**KW, spatial_pool="mean").eval()
    x = torch.randn(3, 6, 96)
    h = _spatial_tokens(m, x)
    feats, alpha = m.forward_features(x)
    torch.testing.assert_close(feats[:, D:], h.sum(dim=1) / 6)
    torch.testing.assert_close(m(x), m.head(feats))
    # the weights a plot reads: 1/C over the tokens; the rollout averages the rows of R
    torch.testing.assert_close(alpha, torch.full((3, 6), 1 / 6))
    torch.testing.assert_close(m.channel_weights(x, method="pool"), torch.full((3, 6), 1 / 6))
    r = m.attention_rollout(x)
    torch.testing.assert_close(m.channel_weights(x), r.mean(dim=1))
    torch.testing.assert_close(m.channel_weights(x).sum(1), torch.ones(3))


def test_registered_pool_gives_features_and_channel_weights(registered):
    torch.manual_seed(0)
    m = DBConformer(**KW, spatial_pool=registered).eval()
    x = torch.randn(3, 6, 96)
    h = _spatial_tokens(m, x)
    feats, alpha = m.forward_features(x)
    pool = m.channel_pool
    torch.testing.assert_close(feats[:, D:], pool(h))
    torch.testing.assert_close(alpha, pool.attention(h))
    torch.testing.assert_close(m(x), m.head(feats))
    w = m.channel_weights(x)
    torch.testing.assert_close(w, torch.einsum("bc,bcj->bj", alpha, m.attention_rollout(x)))


def test_unknown_or_unfit_pool_names_the_argument_and_the_choices(registered):
    with pytest.raises(ValueError, match=r"spatial_pool 'attn'; valid: mean, channel_pool, test_query_pool"):
        DBConformer(**KW, spatial_pool="attn")
    # registered, but not a pool of channel tokens (B, C, D) -> (B, D)
    with pytest.raises(ValueError, match=r"spatial_pool 'se' is not a pool of channel tokens.*valid: mean"):
        DBConformer(**KW, spatial_pool="se")
    with pytest.raises(
        ValueError, match=r"'asp' is not a pool of channel tokens: it fails on .*\(2, 6, 40\)"
    ):
        DBConformer(**KW, spatial_pool="asp")  # (B, C, T) -> (B, 2C) statistics pooling
    with pytest.raises(
        ValueError, match=r"forward maps tokens \(2, 6, 40\) to \(2, 6, 40\), expected \(2, 40\)"
    ):
        DBConformer(**KW, spatial_pool="test_gate")
    with pytest.raises(ValueError, match="test_no_weights_pool.*no attention"):
        DBConformer(**KW, spatial_pool="test_no_weights_pool")
    with pytest.raises(TypeError, match="spatial_pool must be a str"):
        DBConformer(**KW, spatial_pool=None)


def test_spatial_pool_kwargs_reach_the_layer():
    m = DBConformer(**KW, spatial_pool="channel_pool", spatial_pool_kwargs={"hidden_dim": 8})
    assert m.channel_pool.hidden_dim == 8
    assert _count(DBConformer(**KW)) - _count(m) == (D * D + 2 * D + 1) - (D * 8 + 2 * 8 + 1)
    with pytest.raises(
        TypeError, match=r"spatial_pool='channel_pool' with spatial_pool_kwargs=\{'width': 8\}"
    ):
        DBConformer(**KW, spatial_pool_kwargs={"width": 8})
    with pytest.raises(ValueError, match="'mean' takes no arguments"):
        DBConformer(**KW, spatial_pool="mean", spatial_pool_kwargs={"hidden_dim": 8})


def test_unknown_name_lists_only_builtin_pools_without_registrations():
    with pytest.raises(ValueError, match=r"valid: mean, channel_pool \(or a token pool added with"):
        DBConformer(**KW, spatial_pool="nope")


def test_deprecated_channel_attention_flag_maps_onto_spatial_pool():
    for flag, name in ((False, "mean"), (True, "channel_pool")):
        torch.manual_seed(0)
        with pytest.warns(DeprecationWarning, match=f"spatial_pool='{name}'"):
            old = DBConformer(**KW, channel_attention=flag)
        torch.manual_seed(0)
        new = DBConformer(**KW, spatial_pool=name)
        assert old.spatial_pool == name and old.use_channel_attention is flag
        assert list(old.state_dict()) == list(new.state_dict())
        for k, v in new.state_dict().items():
            torch.testing.assert_close(old.state_dict()[k], v, rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match="contradicts spatial_pool='mean'"):
        DBConformer(**KW, channel_attention=True, spatial_pool="mean")


@pytest.mark.parametrize("pool", ["mean", "registered"])
def test_trace_and_export_match_eager(pool, registered):
    torch.manual_seed(0)
    m = DBConformer(**KW, spatial_pool=registered if pool == "registered" else pool).eval()
    x = torch.randn(3, 6, 96)
    ref = m(x)
    torch.testing.assert_close(torch.jit.trace(m, (x,))(x), ref)
    torch.testing.assert_close(torch.export.export(m, (x,)).module()(x), ref)


def test_mean_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    m = DBConformer(**KW, spatial_pool="mean").eval()
    path = tmp_path / "db_mean.onnx"
    torch.onnx.export(m, (torch.randn(3, 6, 96),), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)  # fmt: skip
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x5 = torch.randn(5, 6, 96)
    (out,) = sess.run(None, {"x": x5.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), m(x5), rtol=1e-4, atol=1e-5)


def test_eeg_task_reads_the_uniform_weights_of_a_mean_pool(tmp_path):
    """The EEG task's predict / metrics / plots run on a mean-pooled DBConformer (weights 1/C)."""
    from sigattn.tasks.eeg.task import EEGParams, EEGTask

    task = EEGTask(EEGParams(n_subjects=1, n_trials_per_class=12, synthetic_sfreq=64.0, duration=1.0))
    ds = task.build_datasets()
    t = task.trials
    m = DBConformer(n_chans=len(t.ch_names), n_outputs=len(t.class_names), n_times=t.X.shape[2], sfreq=t.sfreq,
                    chs_info=list(t.ch_names), patch_size=16, spatial_pool="mean").eval()  # fmt: skip
    batch = task.collate([ds["test"][i] for i in range(len(ds["test"]))])
    out = task.predict(m, batch)
    n = len(ds["test"])
    torch.testing.assert_close(
        out["channel_pool_weights"], torch.full((n, len(t.ch_names)), 1 / len(t.ch_names))
    )
    torch.testing.assert_close(out["channel_weights"], m.channel_weights(batch["x"]))
    metrics = task.metrics(out, "test")
    assert "informative_in_top5" in metrics and len(task.last_top_channels["test"]) == 5
    pytest.importorskip("matplotlib")
    pytest.importorskip("mne")
    paths = task.plots(m, out, "test", tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)
