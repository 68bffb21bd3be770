"""A run's .jsonl records (metrics.jsonl) read as a reader would want them: torn lines skipped. Imports no
torch, so the report and the CLI read them at no start-up cost."""

from __future__ import annotations

import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """The JSON records of a .jsonl file (metrics.jsonl), a torn line skipped."""
    out = []
    for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # a torn line, or one nested too deeply
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
