"""`thermodiff reproduce`: the paper's experiments, one command each, and their report."""

from __future__ import annotations

import sys
from pathlib import Path

from thermodiff.cli.args import device_of, set_threads, show_progress
from thermodiff.cli.evaluate import format_report
from thermodiff.errors import ThermodiffError, first_line


def cmd_reproduce(args) -> int:
    from thermodiff.config import load_toml
    from thermodiff.data.sources import DATASETS
    from thermodiff.evaluation.experiments import EXPERIMENTS
    from thermodiff.evaluation.reproduce import reproduce

    names = args.experiments or list(EXPERIMENTS)
    for name in names:
        if name not in EXPERIMENTS:
            raise ThermodiffError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    failed: dict[str, str] = {}  # several experiments: one that fails is reported, the others go on
    for name in names:
        out = Path(args.out) / name if len(names) > 1 else Path(args.out)
        try:
            device, (config, overrides) = device_of(args.device), EXPERIMENTS[name][args.budget]
            set_threads(args, DATASETS[load_toml(config, overrides).data.name].kind == "vectors", device)
            result = reproduce(name, args.budget, out, device, progress=show_progress(args))
        except KeyboardInterrupt:  # the report shows how far the interrupted experiment got
            write_report(Path(args.out), names, args.budget, list(EXPERIMENTS), failed)
            raise
        except ThermodiffError as e:
            if len(names) == 1:
                raise
            failed[name] = first_line(e)
            print(f"thermodiff: {name}: {failed[name]}", file=sys.stderr)
        else:
            print(format_report(result))
            for fig in result.get("figures", []):
                where = fig["path"] or f"missing ({fig['missing']})"
                print(f"  figure {fig['name']}: {where}")
        report = write_report(Path(args.out), names, args.budget, list(EXPERIMENTS), failed)
        print(f"report: {report}")
    if failed:
        print(
            f"thermodiff: {len(failed)} of {len(names)} experiments failed: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 2
    return 0


def write_report(out: Path, names: list[str], budget: str, known: list[str], failed: dict[str, str]) -> Path:
    """DIR/report.md and DIR/report.html from the runs as they stand (rewritten after each experiment)."""
    from thermodiff.reporting import build_report
    from thermodiff.run.checkpoint import atomic_write_text

    for file, text in build_report(out, names, budget, known, failed).items():
        atomic_write_text(out / file, text)
    return out / "report.html"
