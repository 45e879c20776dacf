"""SpeechBrain parity: a random SpeechBrain ECAPA_TDNN state_dict loads and gives the same embeddings."""

import pytest
import torch

from sigattn.models.ecapa_speechbrain import (
    SpeechBrainECAPA,
    convert_speechbrain_state_dict,
    load_speechbrain_checkpoint,
    relative_to_frames,
)

# the audio extra: present in the development environment (a missing one fails there, see tests/conftest.py);
# absent in `make test-core`
sb_ecapa = pytest.importorskip("speechbrain.lobes.models.ECAPA_TDNN")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


SMALL = dict(channels=[64, 64, 64, 64, 192], lin_neurons=32, attention_channels=16, se_channels=16)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def sb_pair(tmp_path_factory):
    torch.manual_seed(0)
    sb = sb_ecapa.ECAPA_TDNN(80, **SMALL)
    for mod in sb.modules():  # random BN statistics and affine parameters, as a trained model has
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    sb.eval()
    path = tmp_path_factory.mktemp("sb") / "embedding_model.ckpt"
    torch.save(sb.state_dict(), path)
    return sb, path


def test_full_size_parameter_counts():
    # SpeechBrain's own modules, counted, and the reference sheet's values (section 6)
    assert n_params(SpeechBrainECAPA(80)) == n_params(sb_ecapa.ECAPA_TDNN(80)) == 6_194_048
    big = [1024, 1024, 1024, 1024, 3072]
    assert n_params(SpeechBrainECAPA(80, channels=big)) == 20_767_552
    assert n_params(SpeechBrainECAPA(80, channels=[1024] * 4 + [1536])) == 14_660_416


def test_checkpoint_loads_and_matches_without_padding(sb_pair):
    sb, path = sb_pair
    ours = load_speechbrain_checkpoint(path)
    assert n_params(ours) == n_params(sb)
    x = torch.randn(3, 80, 120)
    with torch.no_grad():
        want = sb(x.transpose(1, 2)).squeeze(1)
        got = ours(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_padded_batch_speechbrain_masking_matches_speechbrain(sb_pair):
    sb, path = sb_pair
    ours = load_speechbrain_checkpoint(path, masking="speechbrain")
    x = torch.randn(3, 80, 160)
    frames = torch.tensor([160, 120, 40])  # relative 1, 0.75, 0.25: exact in float
    with torch.no_grad():
        want = sb(x.transpose(1, 2), frames / 160).squeeze(1)
        got = ours(x, relative_to_frames(frames / 160, 160))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_exact_masking_gives_single_utterance_embeddings(sb_pair):
    sb, path = sb_pair
    ours = load_speechbrain_checkpoint(path)  # masking="exact"
    x = torch.randn(3, 80, 160)
    frames = torch.tensor([160, 97, 31])
    with torch.no_grad():
        got = ours(x, frames)
        leaky = sb(x.transpose(1, 2), frames / 160).squeeze(1)
        for b, n in enumerate(frames):
            single = sb(x[b : b + 1, :, :n].transpose(1, 2)).squeeze(1)
            torch.testing.assert_close(got[b : b + 1], single, atol=1e-5, rtol=0)
    # SpeechBrain's own batched output differs from its single-utterance one (speechbrain#1374)
    assert float((leaky[2] - got[2]).abs().max()) > 1e-4


def test_key_conversion_and_prefixes(sb_pair):
    sb, path = sb_pair
    state = {f"mods.embedding_model.{k}": v for k, v in sb.state_dict().items()}
    conv = convert_speechbrain_state_dict(state)
    assert "blocks.1.se_block.fc1.weight" in conv and "asp.tdnn.2.running_var" in conv and "fc.weight" in conv
    assert "blocks.0.conv.weight" in conv and "blocks.2.res2net_block.blocks.6.norm.weight" in conv
    # the public checkpoint has no num_batches_tracked: loading must tolerate that
    no_nbt = {k: v for k, v in sb.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(no_nbt, path.parent / "nonbt.ckpt")
    load_speechbrain_checkpoint(path.parent / "nonbt.ckpt")


def test_relative_lengths_and_errors(tmp_path):
    assert relative_to_frames(torch.tensor([1.0, 0.5, 0.26]), 100).tolist() == [100, 50, 26]
    with pytest.raises(FileNotFoundError, match="nothere.ckpt"):
        load_speechbrain_checkpoint(tmp_path / "nothere.ckpt")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not an ECAPA_TDNN"):
        load_speechbrain_checkpoint(tmp_path / "other.ckpt")
    m = SpeechBrainECAPA(80, **SMALL)
    with pytest.raises(ValueError, match="relative_to_frames"):
        m(torch.randn(2, 80, 30), torch.tensor([1.0, 0.5]))
