"""The only module that touches torch.distributed: torchrun + DDP (DESIGN.md 5).

Launched by `torchrun --nproc_per_node=N -m thermodiff train CONFIG`; without torchrun every
function here is the identity for one process.
"""

from __future__ import annotations

import os

import torch
from torch import nn


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
    backend = "nccl" if device.startswith("cuda") else "gloo"
    torch.distributed.init_process_group(backend)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def shard(global_batch: int) -> slice:
    """This rank's slice of the global batch, which the config fixes whatever the process count."""
    n = world_size()
    if global_batch % n:
        from thermodiff.errors import ConfigError

        raise ConfigError(f"train.batch = {global_batch} is not divisible by {n} processes")
    b = global_batch // n
    return slice(rank() * b, (rank() + 1) * b)


def wrap(net: nn.Module) -> nn.Module:
    """DDP-wrap the network when distributed (gradients averaged over ranks)."""
    if not is_distributed():
        return net
    return nn.parallel.DistributedDataParallel(net)


def all_reduce_grads(params: list[torch.Tensor]) -> None:
    """Average gradients of parameters that live outside the DDP module (the learned schedule)."""
    if not is_distributed():
        return
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world_size()


def shutdown() -> None:
    if is_distributed():
        torch.distributed.destroy_process_group()
