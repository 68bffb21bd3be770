"""Each experiment's run directory read as it stands: finished (run/status.py), still
training (interrupted, or running), not started, or failed (with the reason reproduce gave); nothing is
computed here, only read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from thermodiff.run.jsonl import read_jsonl
from thermodiff.run.status import finished


@dataclass
class Entry:
    """One experiment of the report: where its run is and what that run holds."""

    name: str
    budget: str
    run_dir: Path
    status: str  # "done", "training", "not started", "failed"
    detail: str = ""
    evaluation: dict | None = None
    config: dict | None = None
    figures: list[dict] = field(default_factory=list)


def read_json(path: Path) -> dict | list | None:
    """A JSON file's value, or None when absent or torn (a reproduction may be writing it)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def last_step(run_dir: Path) -> int | None:
    """The last training step metrics.jsonl logged (a torn last line skipped)."""
    try:
        records = read_jsonl(Path(run_dir) / "metrics.jsonl")
    except OSError:
        return None
    return next((r["step"] for r in reversed(records) if isinstance(r.get("step"), int)), None)


def entry(name: str, budget: str, run_dir: Path) -> Entry:
    """What `run_dir` holds of experiment `name` (budget: the one asked, unless the run records its own)."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    config = config if isinstance(config, dict) else None
    evaluation = read_json(run_dir / "eval.json")
    evaluation = evaluation if isinstance(evaluation, dict) else None
    if config is None:
        return Entry(name, budget, run_dir, "not started")
    steps = config.get("train", {}).get("steps")
    if finished(steps, evaluation):
        figures = [f for f in evaluation.get("figures", []) if isinstance(f, dict)]
        budget = evaluation.get("budget", budget)
        return Entry(name, budget, run_dir, "done", "", evaluation, config, figures)
    step = last_step(run_dir)
    detail = f"trained to step {step if step is not None else 0} of {steps}; not yet evaluated"
    if evaluation is not None and evaluation.get("step") == steps:
        detail = f"trained and evaluated to step {steps}; figures not yet drawn (rerun reproduce)"
    return Entry(name, budget, run_dir, "training", detail, None, config)


def collect(
    out: Path, names: list[str], budget: str, known: list[str] | None = None, failed: dict | None = None
) -> list[Entry]:
    """The entries of a reproduction into `out`: one experiment's run is `out` itself, several are
    out/NAME; experiments of `known` already in out/NAME join the report too (an earlier invocation's).
    failed: {name: why} for experiments this reproduction could not finish (shown unless done)."""
    entries = found(out, names, budget, known)
    for x in entries:
        if x.name in (failed or {}) and x.status != "done":
            x.status, x.detail = "failed", failed[x.name]
    return entries


def found(out: Path, names: list[str], budget: str, known: list[str] | None) -> list[Entry]:
    """The entries as the run directories hold them."""
    out = Path(out)
    if len(names) == 1:  # as reproduce places it
        return [entry(names[0], budget, out)]
    shown = list(names) + [k for k in known or [] if k not in names and (out / k / "config.json").is_file()]
    order = {k: i for i, k in enumerate(known or shown)}
    shown.sort(key=lambda k: order.get(k, len(order)))
    return [entry(k, budget, out / k) for k in shown]
