"""A handful of torch.distributed helpers; the same code runs at world size 1 without a process group.

Launch with `torchrun --nproc_per_node=N -m regaze.cli train ...`: torchrun sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT. The backend is NCCL on CUDA and gloo on the CPU.

Decisions that change the control flow (stop now? validate? was this the best step?) must be the same on every
rank, or one rank enters a collective the others never reach and the job hangs: such a decision is made once,
on rank 0, and handed to the others with `broadcast_object`.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init", "shutdown", "all_reduce_mean", "all_gather_object", "broadcast_object", "barrier",
           "pick_device"]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(requested: str = "auto", *, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:LOCAL_RANK when available, else cpu; otherwise the named device."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init(*, device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun; a no-op at world size 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank=local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown() -> None:
    """Leave the process group. Callers drop their DistributedDataParallel wrappers first (a reducer holds the
    group); the collection here frees any that sit in reference cycles while the interpreter is fully alive:
    a gloo group freed during interpreter teardown instead can abort the process in gloo's C++ threads."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (identity at world size 1)."""
    if dist.is_initialized():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t


def all_gather_object(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] (a one-element list at world size 1)."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, *, src: int = 0):
    """Rank `src`'s `obj` on every rank (any picklable value; the other ranks' `obj` is ignored). Identity at
    world size 1."""
    if not dist.is_initialized():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]
