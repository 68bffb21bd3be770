"""`thermodiff train`: a config (bundled name or path) -> a run directory."""

from __future__ import annotations

import sys
from pathlib import Path

from thermodiff.cli.args import device_of, set_threads, show_progress


def _default_out(config: str) -> Path:
    return Path("runs") / Path(config).stem


def cmd_train(args) -> int:
    from thermodiff.config import load_toml
    from thermodiff.config.rules import warnings_for
    from thermodiff.data.sources import DATASETS
    from thermodiff.training import distributed as dist
    from thermodiff.training.train import train

    cfg = load_toml(args.config, args.set)
    device = dist.init_from_env(device_of(args.device))
    for line in warnings_for(cfg) if dist.is_main() and not args.resume else []:  # said when it began
        print(f"thermodiff: warning: {line}", file=sys.stderr)
    set_threads(args, DATASETS[cfg.data.name].kind == "vectors", device)
    out = Path(args.out) if args.out else _default_out(args.config)
    try:
        train(cfg, out, device=device, resume=args.resume, progress=show_progress(args), overrides=args.set)
        dist.barrier()  # no rank leaves while rank 0 still writes the last checkpoint
        main = dist.is_main()  # asked before shutdown, after which every process is "rank 0"
    finally:
        dist.shutdown()
    if main:
        guide = f"sample RUN --guide 0 --classifier {out}"
        nxt = f"evaluate {out}" if cfg.train.task == "diffusion" else guide
        print(f"trained: {out}  (next: thermodiff {nxt})")
    return 0
