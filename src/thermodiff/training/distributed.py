"""The only module that touches torch.distributed: torchrun + DDP (one global batch, sharded).

Launched by `torchrun --nproc_per_node=N -m thermodiff train CONFIG`; without torchrun every
function here is the identity for one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from thermodiff.errors import ConfigError, ThermodiffError
from thermodiff.run.lock import run_lock

T = TypeVar("T")


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: str) -> str:
    """Join the process group torchrun described in the environment; returns this rank's device."""
    if "RANK" not in os.environ or is_distributed():
        return device
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)  # before NCCL starts, so each rank talks from its own GPU
        torch.distributed.init_process_group("nccl")
        return f"cuda:{local}"
    torch.distributed.init_process_group("gloo")
    return device


def agree(fn: Callable[[], T]) -> T:
    """fn() on every rank; a ThermodiffError on any rank is raised on every rank (naming the rank it
    came from), so that no rank goes on into a collective that a failed rank never joins (it would
    wait there until the launcher killed it)."""
    if not is_distributed():
        return fn()
    out, error = None, None
    try:
        out = fn()
    except ThermodiffError as e:
        error = str(e)
    errors: list[str | None] = [None] * world_size()
    torch.distributed.all_gather_object(errors, error)
    for r, e in enumerate(errors):
        if e is not None:
            raise ConfigError(e if r == rank() else f"rank {r}: {e}")
    return out


@contextmanager
def rank0_run_lock(run_dir: Path) -> Iterator[None]:
    """run_lock(run_dir) held by rank 0 alone (the one writer), agreed by every rank: a refusal ends
    each rank with rank 0's one line (exit 2)."""
    with ExitStack() as stack:
        agree(lambda: stack.enter_context(run_lock(run_dir)) if is_main() else None)
        yield


def shard(global_batch: int) -> slice:
    """This rank's slice of the global batch, which the config fixes whatever the process count."""
    n = world_size()
    if global_batch % n:
        raise ConfigError(f"train.batch = {global_batch} is not divisible by {n} processes")
    b = global_batch // n
    return slice(rank() * b, (rank() + 1) * b)


def wrap(net: nn.Module) -> nn.Module:
    """DDP-wrap the network when distributed (gradients averaged over ranks)."""
    if not is_distributed():
        return net
    p = next(net.parameters())
    ids = [p.device.index] if p.is_cuda else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def all_reduce_grads(params: list[torch.Tensor]) -> None:
    """Average gradients of parameters that live outside the DDP module (the learned schedule)."""
    if not is_distributed():
        return
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world_size()


def _reduce_device() -> str:
    """Where a collective's tensor must live: the current GPU for NCCL, the CPU for gloo."""
    if torch.distributed.get_backend() == "nccl":
        return f"cuda:{torch.cuda.current_device()}"
    return "cpu"


def mean_over_ranks(value: float) -> float:
    """The mean of a per-rank number over all ranks (the identity, bit for bit, for one process).
    Shards are of equal size, so the mean of per-shard means is the global batch's mean."""
    if not is_distributed():
        return value
    v = torch.tensor([value], dtype=torch.float64, device=_reduce_device())
    torch.distributed.all_reduce(v)
    return v.item() / world_size()


def gather(t: torch.Tensor) -> torch.Tensor:
    """Every rank's tensor of one shape, stacked in rank order on the CPU (one process: t[None])."""
    if not is_distributed():
        return t.detach().cpu()[None]
    mine = t.detach().to(_reduce_device())
    parts = [torch.empty_like(mine) for _ in range(world_size())]
    torch.distributed.all_gather(parts, mine)
    return torch.stack(parts).cpu()


def check_in_sync(tensors: list[torch.Tensor]) -> None:
    """Raise if the tensors (parameters, EMA, schedule) are not identical on every rank: a
    fingerprint per tensor (sum and sum of squares in float64) compared by all-gather. DDP keeps
    replicas identical only as long as every rank applies the same averaged gradients."""
    if not is_distributed() or not tensors:
        return
    dev = _reduce_device()
    flat = [t.detach().to(device=dev, dtype=torch.float64) for t in tensors]
    mine = torch.stack([torch.stack([f.sum(), (f * f).sum()]) for f in flat]).flatten()
    gathered = [torch.empty_like(mine) for _ in range(world_size())]
    torch.distributed.all_gather(gathered, mine)
    bad = [r for r, g in enumerate(gathered) if not torch.equal(g, gathered[0])]
    if bad:
        raise RuntimeError(f"replicas diverged: ranks {bad} hold different parameters from rank 0")


def barrier() -> None:
    """Wait for every rank (call on the success path only: a rank that failed never arrives)."""
    if is_distributed():
        if torch.distributed.get_backend() == "nccl":
            torch.distributed.barrier(device_ids=[torch.cuda.current_device()])
        else:
            torch.distributed.barrier()


def shutdown() -> None:
    if is_distributed():
        torch.distributed.destroy_process_group()
