"""Checks shared by every command: the device, and each numeric argument's interval."""

from __future__ import annotations

import argparse

from thermodiff.errors import ThermodiffError


def device_of(name: str) -> str:
    """--device: auto (CUDA when there is one), else checked as the library checks a device."""
    import torch

    from thermodiff.model.args import check_device

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return check_device(name, "--device must be auto,")


WEIGHTS_HELP = (
    "ema: the moving average of the weights (train.ema, warmed up); raw: the last training step's weights"
)


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
    "threads": "[1, 4096]",
}


def check_args(args: argparse.Namespace) -> None:
    from thermodiff.config.rules import within

    for name, interval in _ARG_RANGES.items():
        value = getattr(args, name, None)
        if value is not None and not within(value, interval):
            raise ThermodiffError(f"--{name.replace('_', '-')} = {value} must lie in {interval}")


def load_weights(args: argparse.Namespace):
    """The run in args.run with the weights args.weights names; a one-line warning on stderr when the
    moving average still holds more than 1% of the untrained initial weights (a run trained without
    the average's warm-up: before train.ema_warmup existed, or with it off)."""
    import sys

    from thermodiff.run.load import load_run
    from thermodiff.training.ema import ema_weight_of_start

    device = device_of(args.device)
    run = load_run(args.run, device, ema=args.weights == "ema")
    set_threads(args, len(run.spec.shape) == 1, device)
    train = run.config.train
    start = 0.0 if train.ema_warmup else ema_weight_of_start(train.ema, run.step, warmup=False)
    if run.weights == "ema" and start > 0.01:
        print(
            f"thermodiff: warning: the EMA weights still hold {start:.0%} of the untrained initial weights "
            f"(train.ema = {train.ema}, {run.step} steps, no warm-up); --weights raw uses the trained ones",
            file=sys.stderr,
        )
    return run


def set_threads(args: argparse.Namespace, vector_data: bool, device: str) -> None:
    """torch's intra-op threads for the work: --threads N when given; else OMP_NUM_THREADS when set;
    else one for vector data on a CPU. Their networks are small (a batch of 512 through 256 units): an
    operation split over cores costs more in hand-offs than it saves, and on a machine other work keeps
    busy every operation waits for the slowest core (README: Speed on a busy machine)."""
    import os

    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    elif not os.environ.get("OMP_NUM_THREADS") and vector_data and device == "cpu":
        torch.set_num_threads(1)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr: unless --quiet, and only when stderr is a terminal (logs stay clean)."""
    import sys

    return not getattr(args, "quiet", False) and sys.stderr.isatty()
