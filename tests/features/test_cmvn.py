"""CMVN vs hand-worked formulas and sliding CMN vs torchaudio.functional.sliding_window_cmn (Kaldi port)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sigattn.features import cmvn, sliding_cmn

F = pytest.importorskip("torchaudio.functional")


def test_cmvn_matches_formula_and_masks():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (3, 20, 50))
    lengths = np.array([50, 31, 7])
    for norm_vars in (False, True):
        y = cmvn(x, lengths, norm_vars=norm_vars)
        for b, n in enumerate(lengths):
            item = x[b, :, :n]
            ref = item - item.sum(-1, keepdims=True) / n
            if norm_vars:
                ref = ref / np.sqrt((ref**2).sum(-1, keepdims=True) / n)
            np.testing.assert_allclose(y[b, :, :n], ref, rtol=1e-10, atol=1e-12)
            assert not y[b, :, n:].any()
    # Utterance CMN == sliding CMN with a centred window covering the utterance (torchaudio reference).
    ref = F.sliding_window_cmn(torch.from_numpy(x[0].T), cmn_window=1000, center=True).numpy().T
    np.testing.assert_allclose(cmvn(x[0]), ref, atol=1e-10)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(cmn_window=40, min_cmn_window=10),
        dict(cmn_window=40, center=True),
        dict(cmn_window=25, min_cmn_window=5, norm_vars=True),
        dict(cmn_window=31, center=True, norm_vars=True),
        dict(cmn_window=500, min_cmn_window=300),
    ],
)
def test_sliding_cmn_matches_torchaudio(kw):
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.5, (2, 16, 150)).astype(np.float32)
    ours = sliding_cmn(x, **kw)
    ta_kw = {("min_cmn_window" if k == "min_cmn_window" else k): v for k, v in kw.items()}
    ref = F.sliding_window_cmn(torch.from_numpy(x).transpose(1, 2).double(), **ta_kw).transpose(1, 2).numpy()
    assert ours.dtype == np.float32 and ours.shape == x.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-4)


def test_sliding_cmn_lengths_equal_items_alone():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 8, 90))
    y = sliding_cmn(x, lengths=[90, 33], cmn_window=20, min_cmn_window=5)
    np.testing.assert_allclose(y[1, :, :33], sliding_cmn(x[1, :, :33], cmn_window=20, min_cmn_window=5))
    assert not y[1, :, 33:].any()


def test_cmvn_bad_input():
    with pytest.raises(ValueError, match="index"):
        cmvn(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="lengths"):
        cmvn(np.zeros((2, 4, 5)), lengths=[5, 6])
    with pytest.raises(ValueError, match="2-D or 3-D"):
        sliding_cmn(np.zeros(5))
    with pytest.raises(TypeError, match="dtype"):
        sliding_cmn(np.zeros((3, 5), dtype=np.int64))
