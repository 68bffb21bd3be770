"""`thermodiff reproduce`: the paper's experiments, one command each."""

from __future__ import annotations

from pathlib import Path

from thermodiff.cli.args import device_of
from thermodiff.cli.evaluate import format_report
from thermodiff.errors import ThermodiffError


def cmd_reproduce(args) -> int:
    from thermodiff.evaluation.reproduce import EXPERIMENTS, reproduce

    names = args.experiments or list(EXPERIMENTS)
    for name in names:
        if name not in EXPERIMENTS:
            raise ThermodiffError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    for name in names:
        out = Path(args.out) / name if len(names) > 1 else Path(args.out)
        result = reproduce(name, args.budget, out, device_of(args.device), progress=not args.quiet)
        print(format_report(result))
        for path in result.get("figures", []):
            print(f"  figure: {path}")
    return 0
