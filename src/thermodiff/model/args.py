"""The public functions' arguments checked as the CLI checks its own: one ThermodiffError line each,
before any work, instead of a wrong number or a raw TypeError from deep inside."""

from __future__ import annotations

import re

import torch

from thermodiff.errors import ThermodiffError


def check_device(device: str | torch.device) -> str:
    """'cpu', 'cuda' or 'cuda:N' that this machine has (a torch.device is taken as its name)."""
    name = str(device)
    if name != "cpu" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ThermodiffError(f"device must be cpu, cuda or cuda:N, not {name!r}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ThermodiffError(f"device {name!r} asked for, but no CUDA device is available")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ThermodiffError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPUs")
    return name


def check_count(name: str, value, low: int = 1, high: int = 10**7) -> int:
    """An integer count in [low, high] (a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ThermodiffError(f"{name} = {value!r} must be an integer in [{low}, {high:g}]")
    return value


def check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ThermodiffError(f"{name} = {value!r} must be one of {', '.join(choices)}")
    return value
