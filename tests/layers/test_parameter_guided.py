import pytest
import torch
from _layer_checks import n_params

from sigattn.layers import ParameterGuidedChannelAttention as PGCA


def test_identity_at_init_and_param_count():
    pg = PGCA(16, param_dim=3, hidden_dim=8)
    x = torch.randn(2, 16, 7)
    torch.testing.assert_close(pg(x, torch.randn(2, 3)), x)
    assert n_params(pg) == 3 * 8 + 8 + 8 * 16 + 16
    ids = PGCA(16, num_embeddings=5, embed_dim=4, hidden_dim=8)
    assert n_params(ids) == 5 * 4 + 4 * 8 + 8 + 8 * 16 + 16


def test_matches_hand_formula():
    torch.manual_seed(0)
    pg = PGCA(6, param_dim=2, hidden_dim=5, zero_init=False, scale=1.0)
    x, p = torch.randn(3, 6, 4, 4), torch.randn(3, 2)
    gelu = torch.nn.functional.gelu
    for i in range(3):
        h = gelu(pg.fc1.weight.double() @ p[i].double() + pg.fc1.bias.double())
        g = torch.sigmoid(pg.fc2.weight.double() @ h + pg.fc2.bias.double())
        torch.testing.assert_close(
            pg(x, p)[i].double(), x[i].double() * g[:, None, None], atol=1e-6, rtol=1e-5
        )


def test_ids_share_gates_and_masking_is_trivially_exact():
    torch.manual_seed(1)
    pg = PGCA(8, num_embeddings=4, zero_init=False)
    x = torch.randn(3, 8, 10)
    ids = torch.tensor([2, 0, 2])
    g = pg.attention(x, ids)
    torch.testing.assert_close(g[0], g[2])
    assert not torch.allclose(g[0], g[1])
    out = pg(x, ids, torch.tensor([10, 4, 6]))
    torch.testing.assert_close(out[1, :, :4], pg(x[1:2, :, :4], ids[1:2])[0])


def test_learns_parameter_dependent_gains():
    """Target: channel c scaled by sigmoid(a_c * p); the layer recovers it from p alone."""
    torch.manual_seed(2)
    a = torch.linspace(-3, 3, 6)
    pg = PGCA(6, param_dim=1, hidden_dim=16, scale=1.0)
    opt = torch.optim.Adam(pg.parameters(), lr=0.02)
    for _ in range(300):
        x, p = torch.randn(32, 6, 8), torch.randn(32, 1)
        loss = (pg(x, p) - x * torch.sigmoid(a * p)[:, :, None]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = torch.linspace(-1, 1, 5)[:, None]
    torch.testing.assert_close(pg.attention(torch.zeros(5, 6, 1), p), torch.sigmoid(a * p), atol=0.05, rtol=0)


def test_bad_input():
    with pytest.raises(ValueError, match="exactly one of param_dim"):
        PGCA(8)
    with pytest.raises(ValueError, match="exactly one of param_dim"):
        PGCA(8, param_dim=2, num_embeddings=3)
    pg = PGCA(8, param_dim=2)
    with pytest.raises(ValueError, match=r"shape \(B=2, P=2\), got \(2, 3\)"):
        pg(torch.randn(2, 8, 5), torch.randn(2, 3))
    with pytest.raises(ValueError, match="8 channels, got 4"):
        pg(torch.randn(2, 4, 5), torch.randn(2, 2))
    ids = PGCA(8, num_embeddings=3)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\], got \[0, 3\]"):
        ids(torch.randn(2, 8, 5), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer ids of shape"):
        ids(torch.randn(2, 8, 5), torch.tensor([0.0, 1.0]))
