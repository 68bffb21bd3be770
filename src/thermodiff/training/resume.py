"""Fresh or resumed: the config a run directory is trained under (its config.json rules a resume)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from thermodiff.config import Config, from_dict, replace_section
from thermodiff.errors import ConfigError, first_line
from thermodiff.training import distributed as dist

# What makes a run the run it is: a resume with another value is another experiment.
_IDENTITY = ("train.task", "data.name", "diffusion.kernel", "model.net")


def same(given: object, was: object) -> bool:
    """Equal as config values: NaN (e.g. 'the paper reports no K') equals NaN."""
    both_nan = isinstance(given, float) and isinstance(was, float) and math.isnan(given) and math.isnan(was)
    return both_nan or given == was


def config_for_run(
    run_dir: Path, cfg: Config, resume: bool, overrides: Sequence[str] | None = None
) -> Config:
    """Fresh: run_dir must hold no run. Resume: the run's config.json rules; cfg's identity fields and
    every override must agree with it (a one-line error), except train.steps, which is cfg's when
    overrides is None (a library call) or names it (--set train.steps=N), else the run's own."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory")
    if not resume:  # rank 0 alone: it may already have written config.json when another rank looks
        names = ("config.json", "checkpoints", "metrics.jsonl") if dist.is_main() else ()
        held = [n for n in names if (run_dir / n).exists()]
        if held:
            raise ConfigError(f"{run_dir} already holds a run ({held[0]}): pass --resume or another --out")
        return cfg
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"cannot resume: {path} not found")
    try:
        saved = from_dict(json.loads(path.read_text()), stored=True)
    except (OSError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
        raise ConfigError(f"cannot resume: {path} is corrupt ({first_line(e)})") from None
    keys = None if overrides is None else [o.split("=", 1)[0].strip() for o in overrides]
    for key in (*_IDENTITY, *(keys or ())):
        section, field = key.split(".", 1)
        given, was = getattr(getattr(cfg, section), field), getattr(getattr(saved, section), field)
        if key != "train.steps" and not same(given, was):
            raise ConfigError(
                f"cannot resume {run_dir} with {key} = {given!r}: it was trained with {was!r} "
                "(its config.json rules; only train.steps may change)"
            )
    steps = cfg.train.steps if keys is None or "train.steps" in keys else saved.train.steps
    return replace_section(saved, "train", steps=steps)
