"""Process groups, a resumable distributed sampler and cross-rank gathering of evaluation outputs.

Launch with ``torchrun`` (it sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``);
the backend is NCCL when CUDA is used and gloo otherwise (PyTorch DDP: Li et al., "PyTorch Distributed",
VLDB 2020).

Example:
    >>> s = ResumableSampler(10, shuffle=False)
    >>> s.set_epoch(0, start=4)
    >>> list(s)
    [4, 5, 6, 7, 8, 9]
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = [
    "DistInfo",
    "init_distributed",
    "ResumableSampler",
    "gather_outputs",
    "broadcast_object",
    "RankStopped",
    "peer_failure",
]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


class RankStopped(RuntimeError):
    """Another process of the group died (crash, OOM kill, Ctrl-C): this rank's collective failed, it stops."""


# what gloo / NCCL / the TCP store say when a peer process has gone away
_PEER_GONE = re.compile(
    r"connection (reset|closed|refused)|broken pipe|socket timeout|peer|nccl communicator was aborted|"
    r"ncclRemoteError|ncclSystemError|remote process|recvValue|recvBytes|timed out",
    re.IGNORECASE,
)


def peer_failure(error: BaseException, info: DistInfo) -> RankStopped | None:
    """A one-line :class:`RankStopped` when ``error`` is a collective that failed because another rank
    died (raised inside ``torch.distributed``, or a gloo/NCCL connection error), else ``None``."""
    if not info.enabled or not isinstance(error, RuntimeError) or isinstance(error, RankStopped):
        return None
    frames = traceback.extract_tb(error.__traceback__)
    in_dist = bool(frames) and "torch/distributed/" in frames[-1].filename.replace(os.sep, "/")
    text = str(error)
    dist_error = isinstance(error, getattr(dist, "DistError", ()))
    named = re.search(r"gloo|nccl|c10d", text, re.IGNORECASE)
    if not (_PEER_GONE.search(text) and (in_dist or dist_error or named)):
        return None  # a failure of this rank itself (a bad pickle, a shape mismatch): its own traceback
    cause = (text.strip().splitlines() or [type(error).__name__])[0]
    cause = re.sub(r"^\[[^\]]*\.(cpp|cc|h):\d+\]\s*", "", cause)[:160]  # gloo's "[/pytorch/.../pair.cc:538] "
    who = f"rank {1 - info.rank} of 2" if info.world_size == 2 else f"another of the {info.world_size} ranks"
    return RankStopped(f"{who} stopped ({cause}); this rank ({info.rank}) stops too")


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        here = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, here)


class ResumableSampler(Sampler[int]):
    """Like ``DistributedSampler`` (same shuffling and padding), plus a start position within the epoch.

    Each epoch's order is ``torch.randperm(n)`` from a generator seeded with ``seed + epoch``; it is padded by
    repeating items to a multiple of ``num_replicas`` (or truncated with ``drop_last``) and rank ``r`` takes
    items ``r, r + world, ...``. ``set_epoch(e, start=k)`` skips this rank's first ``k`` items, which is how a
    resumed run continues mid-epoch with exactly the batches the interrupted one would have seen.
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last=False,
    ):
        if n <= 0:
            raise ValueError(f"cannot sample from an empty dataset (n={n})")
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.epoch, self.start = 0, 0
        if drop_last and n % num_replicas:
            self.per_rank = n // num_replicas
        else:
            self.per_rank = -(-n // num_replicas)
        self.total = self.per_rank * num_replicas

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        """This rank's full index list for the current epoch (before skipping ``start``)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.total > len(order):
            pad = self.total - len(order)
            order += (order * (pad // len(order) + 1))[:pad]
        else:
            order = order[: self.total]
        return order[self.rank : self.total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


def gather_outputs(outputs: list[dict[str, torch.Tensor]], info: DistInfo) -> dict[str, torch.Tensor] | None:
    """Concatenate per-batch outputs, gather them on rank 0, sort by ``"index"`` and drop duplicates.

    Returns the merged dict on rank 0 and ``None`` on the other ranks.
    """
    local: dict[str, torch.Tensor] = {}
    if outputs:
        for k in outputs[0]:
            local[k] = torch.cat([o[k].detach().cpu() for o in outputs])
    if info.enabled:
        parts: list = [None] * info.world_size
        dist.all_gather_object(parts, local)
        if not info.is_main:
            return None
        parts = [p for p in parts if p]
        merged = {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}
    else:
        merged = local
    if "index" not in merged:
        raise KeyError(
            "Task.predict must return an 'index' tensor (dataset indices) so outputs can be merged"
        )
    idx = merged["index"].long().reshape(-1)
    order = torch.argsort(idx, stable=True)
    keep = torch.ones(len(idx), dtype=torch.bool)
    sorted_idx = idx[order]
    keep[1:] = sorted_idx[1:] != sorted_idx[:-1]
    sel = order[keep]
    return {k: v[sel] for k, v in merged.items()}


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(value: float, info: DistInfo, device: torch.device | str = "cpu") -> float:
    """Mean of a Python float over ranks (``device`` must be CUDA under NCCL)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size
