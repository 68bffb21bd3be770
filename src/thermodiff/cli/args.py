"""Checks shared by every command: the device, and each numeric argument's interval."""

from __future__ import annotations

import argparse
import re

from thermodiff.errors import ThermodiffError


def device_of(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ThermodiffError(f"--device must be auto, cpu, cuda or cuda:N, not {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ThermodiffError("--device cuda asked for, but no CUDA device is available")
    return name


# Numeric arguments and the interval each must lie in (config_rules' notation: NaN and inf never do),
# checked once for every command that has it; the upper bounds keep allocations in reach.
_ARG_RANGES = {
    "n": "[1, 1e7]",
    "draws": "[1, 1e4]",
    "parzen_samples": "[1, 1e7]",
    "steps": "[2, 1e4]",
    "seed": "[-2**63, 2**64)",
    "noise_std": "(0, inf)",
    "scale": "(-inf, inf)",
}


def check_args(args: argparse.Namespace) -> None:
    from thermodiff.config.rules import within

    for name, interval in _ARG_RANGES.items():
        value = getattr(args, name, None)
        if value is not None and not within(value, interval):
            raise ThermodiffError(f"--{name.replace('_', '-')} = {value} must lie in {interval}")
