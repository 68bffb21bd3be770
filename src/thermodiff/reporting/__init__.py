"""The reproduction report: each experiment's run directory (eval.json, config.json, metrics.jsonl) read
into tables and figures, rendered as Markdown and as one self-contained HTML page. Imports no torch."""

from thermodiff.reporting.build import build_report
from thermodiff.reporting.collect import Entry, collect

__all__ = ["Entry", "build_report", "collect"]
