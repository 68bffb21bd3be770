"""`thermodiff plot`: a run's figures from its directory: the training curve, and for images the
progressive-denoising strip (training/figures.py, the figures written when training ends)."""

from __future__ import annotations

import sys
from pathlib import Path

from thermodiff.cli.args import device_of, load_weights
from thermodiff.errors import ThermodiffError


def cmd_plot(args) -> int:
    from thermodiff.run.jsonl import read_jsonl  # torch-free start-up: imported when the command runs
    from thermodiff.training.figures import run_plots

    run = load_weights(args)
    run_dir = Path(args.run)
    out = Path(args.out) if args.out else run_dir / "plots"
    if not any("K_bits" in m for m in read_jsonl(run_dir / "metrics.jsonl")):
        raise ThermodiffError(f"{run_dir / 'metrics.jsonl'}: no training records to plot")
    figures = run_plots(run, out, seed=args.seed, device=device_of(args.device))
    for fig in figures:
        if fig.path is not None:
            print(f"wrote {fig.path}")
        else:
            print(f"thermodiff: could not draw {fig.name}: {fig.missing}", file=sys.stderr)
    return 0 if all(f.path is not None for f in figures) else 1
