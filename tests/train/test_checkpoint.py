"""Checkpoints: atomic writes, weights_only loading, clear errors for truncated/tampered files, rotation."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from sigattn.train import checkpoint as ck
from sigattn.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def state(v: float = 1.0) -> dict:
    return {"model": {"w": torch.full((3, 4), v), "n": torch.tensor(7)}, "loop": {"step": 5, "best": None},
            "rng": [(3, tuple(range(5)), None)], "name": "x"}  # fmt: skip


def test_roundtrip_is_plain_and_weights_only(tmp_path):
    p = save_checkpoint(state(), tmp_path / "a.ckpt")
    got = load_checkpoint(p)
    assert torch.equal(got["model"]["w"], torch.ones(3, 4)) and got["loop"] == {"step": 5, "best": None}
    raw = torch.load(p, weights_only=True)  # independent: the plain torch loader accepts the file
    assert raw["format"] == "sigattn-checkpoint" and raw["digest"] == ck.digest(raw["state"])
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_file_names_the_file(tmp_path):
    p = save_checkpoint(state(), tmp_path / "t.ckpt")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    assert str(p) in str(e.value) and "truncated or corrupted" in str(e.value)
    p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="t.ckpt"):
        load_checkpoint(p)


def _rewrite_tensor_bytes(path, flip_at: int = 0) -> None:
    """Tamper with one stored tensor's bytes inside the zip so the file still unpickles."""
    src = zipfile.ZipFile(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as dst:
        done = False
        for info in src.infolist():
            data = src.read(info.filename)
            if "/data/" in info.filename and not done and len(data) > flip_at:
                data = bytearray(data)
                data[flip_at] ^= 0xFF
                data, done = bytes(data), True
            dst.writestr(info, data)
    assert done
    path.write_bytes(buf.getvalue())


def test_tampered_tensor_fails_integrity(tmp_path):
    p = save_checkpoint(state(), tmp_path / "m.ckpt")
    _rewrite_tensor_bytes(p)
    torch.load(p, weights_only=True)  # still loads with torch alone: only the digest catches it
    with pytest.raises(CheckpointError, match=r"m.ckpt.*integrity check"):
        load_checkpoint(p)


def test_foreign_and_unsafe_files(tmp_path):
    p = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(1)}, p)
    with pytest.raises(CheckpointError, match="not a sigattn checkpoint"):
        load_checkpoint(p)

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    q = tmp_path / "evil.ckpt"
    torch.save({"format": "sigattn-checkpoint", "version": 1, "digest": "", "state": Evil()}, q)
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_checkpoint(q)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_failed_write_keeps_the_good_file(tmp_path, monkeypatch):
    p = save_checkpoint(state(1.0), tmp_path / "g.ckpt")
    before = p.read_bytes()
    with pytest.raises(TypeError, match="only dicts"):
        save_checkpoint({"bad": object()}, p)
    assert p.read_bytes() == before

    real = ck._read

    def broken_verify(path):  # the new file reads back wrong (e.g. disk full, bad sector)
        raise CheckpointError(f"checkpoint {path} cannot be read")

    monkeypatch.setattr(ck, "_read", broken_verify)
    with pytest.raises(CheckpointError):
        save_checkpoint(state(2.0), p)
    monkeypatch.setattr(ck, "_read", real)
    assert p.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
    assert torch.equal(load_checkpoint(p)["model"]["w"], torch.ones(3, 4))


def test_rotation_keeps_newest(tmp_path):
    for s in (3, 10, 7, 1):
        save_checkpoint(state(s), ck.step_path(tmp_path, s))
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == [f"step-{s:09d}.ckpt" for s in (1, 3, 7, 10)]
    removed = ck.rotate_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["step-000000001.ckpt", "step-000000003.ckpt"]
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-000000007.ckpt", "step-000000010.ckpt"]
