"""`thermodiff plot`: a run's figures from its directory: the training curve, and for images the
progressive-denoising strip."""

from __future__ import annotations

import json
from pathlib import Path

from thermodiff.cli.args import device_of, load_weights
from thermodiff.errors import ThermodiffError


def cmd_plot(args) -> int:
    from thermodiff.plots.draw import training_curve
    from thermodiff.run.card import read_jsonl  # torch-free start-up: imported when the command runs

    run = load_weights(args)
    run_dir = Path(args.run)
    out = Path(args.out) if args.out else run_dir / "plots"
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    if not metrics:
        raise ThermodiffError(f"{run_dir / 'metrics.jsonl'}: no training records to plot")
    try:
        index = json.loads((run_dir / "evals" / "index.json").read_text())
    except (OSError, ValueError):
        index = []
    evals = [e for e in index if isinstance(e, dict) and isinstance(e.get("step"), int)]
    paths = [training_curve(metrics, evals, out / "curve.png", title=str(run_dir))]
    if run.units.is_image:
        from thermodiff.evaluation.progressive import denoising_strip

        paths.append(
            denoising_strip(run, out / "denoising.png", seed=args.seed, device=device_of(args.device))
        )
    for path in paths:
        print(f"wrote {path}")
    return 0
