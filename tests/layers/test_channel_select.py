import pytest
import torch
from _layer_checks import n_params
from hypothesis import given, settings
from hypothesis import strategies as st

from sigattn.layers import ChannelSelect


def reference_scores(sel: ChannelSelect, x_item: torch.Tensor) -> torch.Tensor:
    """Scores of one item (M, F, T) by the hand formula, float64."""
    x = x_item.double()
    d = torch.cat([x.mean(-1), x.std(-1, unbiased=False)], dim=-1)  # (M, 2F)
    w1, b1 = sel.proj.weight.double(), sel.proj.bias.double()
    w2, b2 = sel.score.weight[0].double(), sel.score.bias.double()
    return torch.tanh(d @ w1.T + b1) @ w2 + b2


def test_param_count():
    assert n_params(ChannelSelect(40, hidden_dim=16)) == 80 * 16 + 16 + 16 + 1


def test_soft_combination_matches_hand_formula():
    torch.manual_seed(0)
    sel = ChannelSelect(3, k=1, temperature=0.7)
    x = torch.randn(2, 5, 3, 11)
    out = sel(x)
    for i in range(2):
        alpha = torch.softmax(reference_scores(sel, x[i]) / 0.7, dim=0)
        expected = (alpha[:, None, None] * x[i].double()).sum(0)
        torch.testing.assert_close(out[i, 0].double(), expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(sel.attention(x)[i].double(), alpha, atol=1e-6, rtol=1e-5)


def test_hard_topk_at_inference_picks_highest_scores():
    torch.manual_seed(1)
    sel = ChannelSelect(1, k=3).eval()
    x = torch.randn(4, 7, 20)
    out = sel(x)
    for i in range(4):
        order = torch.argsort(reference_scores(sel, x[i][:, None]), descending=True)[:3]
        torch.testing.assert_close(out[i], x[i, order])
    w = sel.selection_weights(x)
    assert torch.equal(w.sum(-1), torch.ones(4, 3)) and torch.equal(w.sum(1).amax(-1), torch.ones(4))


def test_soft_topk_tends_to_hard_selection():
    torch.manual_seed(2)
    sel = ChannelSelect(2, k=2, temperature=1e-4)
    x = torch.randn(3, 6, 2, 9)
    soft = sel.train()(x)
    hard = sel.eval()(x)
    torch.testing.assert_close(soft, hard, atol=1e-4, rtol=0)
    w = ChannelSelect(2, k=2).train().selection_weights(x)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2))


@pytest.mark.parametrize("training", [True, False])
def test_any_number_and_order_of_channels(training):
    torch.manual_seed(3)
    sel = ChannelSelect(1, k=1).train(training)
    for m in (1, 2, 5, 16):
        assert sel(torch.randn(2, m, 10)).shape == (2, 1, 10)
    x = torch.randn(2, 6, 10)
    perm = torch.randperm(6)
    torch.testing.assert_close(sel(x[:, perm]), sel(x), atol=1e-6, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.tuples(st.integers(2, 6), st.integers(1, 15)), min_size=1, max_size=4),
    st.booleans(),
)
def test_padded_channels_and_steps_are_exact(shapes, training):
    torch.manual_seed(len(shapes))
    sel = ChannelSelect(2, k=2).train(training)
    items = [torch.randn(m, 2, t) for m, t in shapes]
    m_max, t_max = max(m for m, _ in shapes), max(t for _, t in shapes)
    x = torch.full((len(items), m_max, 2, t_max), 1e4)
    for i, it in enumerate(items):
        x[i, : it.shape[0], :, : it.shape[-1]] = it
    n_channels = torch.tensor([m for m, _ in shapes])
    lengths = torch.tensor([t for _, t in shapes])
    with torch.no_grad():
        out = sel(x, lengths, n_channels)
        for i, it in enumerate(items):
            alone = sel(it[None])[0]
            torch.testing.assert_close(out[i, ..., : it.shape[-1]], alone, atol=1e-5, rtol=1e-5)


def test_learns_to_pick_the_clean_microphone():
    """Channels = signal + noise of different levels; trained to reconstruct the signal, it picks the cleanest."""
    torch.manual_seed(4)
    sel = ChannelSelect(1, k=1, hidden_dim=8)
    opt = torch.optim.Adam(sel.parameters(), lr=0.05)
    noise_levels = torch.tensor([0.05, 1.0, 2.0, 3.0])
    for _ in range(40):
        s = torch.randn(16, 1, 32)
        perm = torch.argsort(torch.rand(16, 4), dim=-1)
        x = s + noise_levels[perm][:, :, None] * torch.randn(16, 4, 32)
        loss = (sel(x) - s).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sel.eval()
    s = torch.randn(32, 1, 64)
    perm = torch.argsort(torch.rand(32, 4), dim=-1)
    x = s + noise_levels[perm][:, :, None] * torch.randn(32, 4, 64)
    picked = sel.selection_weights(x)[:, 0].argmax(-1)
    clean = (perm == 0).int().argmax(-1)
    assert float((picked == clean).float().mean()) >= 0.9


def test_bad_input():
    sel = ChannelSelect(4, k=2)
    with pytest.raises(ValueError, match=r"\(B, M, F=4, T\)"):
        sel(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="F=4 features per channel"):
        sel(torch.randn(2, 3, 5, 10))
    with pytest.raises(ValueError, match="cannot select k=2 of 1 channels"):
        sel(torch.randn(2, 1, 4, 10))
    with pytest.raises(ValueError, match="n_channels must lie in"):
        sel(torch.randn(2, 3, 4, 10), n_channels=torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="cannot select k=2 of 1"):
        sel(torch.randn(2, 3, 4, 10), n_channels=torch.tensor([3, 1]))
    with pytest.raises(ValueError, match="temperature"):
        ChannelSelect(4, temperature=0.0)
