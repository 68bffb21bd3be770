"""The public functions' arguments checked as the CLI checks its own: one ThermodiffError line each,
before any work, instead of a wrong number or a raw TypeError from deep inside."""

from __future__ import annotations

import re

import torch

from thermodiff.errors import NonFiniteError, ThermodiffError


def check_device(device: str | torch.device, what: str = "device must be") -> str:
    """'cpu', 'cuda' or 'cuda:N' that this machine has (a torch.device is taken as its name); `what`
    opens the message (the CLI's: "--device must be auto,")."""
    name = str(device)
    if name != "cpu" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ThermodiffError(f"{what} cpu, cuda or cuda:N, not {name!r}")
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


def check_number(name: str, value, interval: str) -> float:
    """A real number (not a bool, not a text) in `interval`, written as config ranges are: '[0, 1]'."""
    from thermodiff.config.rules import within

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not within(value, interval):
        raise ThermodiffError(f"{name} = {value!r} must be a number in {interval}")
    return float(value)


def check_shape(shape) -> tuple[int, ...]:
    """A sample shape: a tuple (or list) of positive integers, e.g. (2,) or (1, 28, 28)."""
    if not isinstance(shape, (tuple, list, torch.Size)) or not shape:
        raise ThermodiffError(f"shape = {shape!r} must be a tuple of sizes, e.g. (2,) or (1, 28, 28)")
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ThermodiffError(f"shape = {tuple(shape)!r} must hold positive integers")
    return tuple(shape)


def check_tensor(name: str, x, shape: tuple[int, ...] | None = None, one: bool = False) -> torch.Tensor:
    """A batch (N, *shape) of real numbers, N >= 1 (exactly 1 when `one`), with no NaN or infinity;
    `shape` None: any (N, ...) with at least one data dimension."""
    if not isinstance(x, torch.Tensor):
        raise ThermodiffError(f"{name} must be a torch.Tensor, not a {type(x).__name__}")
    if not (x.is_floating_point() or x.dtype in (torch.bool, torch.uint8, torch.int32, torch.int64)):
        raise ThermodiffError(f"{name} must hold real numbers, not {x.dtype}")
    want = "(1, " if one else "(N, "
    want += ", ".join(map(str, shape)) + ")" if shape else "...)"
    if x.dim() < 2 - (shape == ()) or (shape is not None and tuple(x.shape[1:]) != tuple(shape)):
        raise ThermodiffError(f"{name} has shape {tuple(x.shape)}; this model takes {want}")
    if x.shape[0] < 1 or (one and x.shape[0] != 1):
        raise ThermodiffError(
            f"{name} has shape {tuple(x.shape)}; expected {'one example, ' if one else ''}{want}"
            + ("" if one else " with N >= 1")
        )
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ThermodiffError(f"{name} holds NaN or infinite values")
    return x


def check_generator(generator, device: str | torch.device) -> None:
    """None, or a torch.Generator on the device the samples are drawn on."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise ThermodiffError(f"generator must be a torch.Generator or None, not {type(generator).__name__}")
    if torch.device(generator.device).type != torch.device(device).type:
        raise ThermodiffError(f"generator is on {generator.device}; the samples are drawn on {device}")


def check_finite(what: str, x: torch.Tensor) -> torch.Tensor:
    """x itself when every value is finite; else NonFiniteError, as the CLI refuses to write one."""
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise NonFiniteError(
            f"{what}: {bad} of {x.numel()} values came out NaN or infinite (an input or noise far "
            "outside the data's range?); nothing returned, nothing written"
        )
    return x


def as_numbers(name: str, value, finite: bool = True) -> torch.Tensor:
    """torch.as_tensor(value) in float64 for a tensor, array, list or number; a text or an object is a
    ThermodiffError, and so (with `finite`) is a NaN or an infinity."""
    try:
        out = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ThermodiffError(f"{name} must be a tensor of numbers, not {type(value).__name__}") from None
    if finite and not bool(torch.isfinite(out).all()):
        raise ThermodiffError(f"{name} holds NaN or infinite values")
    return out


def check_callable(name: str, fn) -> None:
    """A function (or any callable object), as a multiplier's log r takes."""
    if not callable(fn):
        raise ThermodiffError(f"{name} must be a function, not {type(fn).__name__}")
