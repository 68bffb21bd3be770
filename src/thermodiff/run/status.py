"""Whether a reproduction's run is finished, one rule for `thermodiff reproduce` (which skips it) and the
report (which shows it done); torch-free, as the report is."""

from __future__ import annotations


def finished(steps: object, evaluation: object) -> bool:
    """eval.json (`evaluation`) is at the configured train.steps and holds the figures reproduce draws; a
    run that `thermodiff evaluate` alone evaluated is not finished (its figures are still to come)."""
    return isinstance(evaluation, dict) and evaluation.get("step") == steps and "figures" in evaluation
