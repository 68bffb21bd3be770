"""The report as Markdown: the tables, then each experiment's figures beside their captions."""

from __future__ import annotations

import os
from pathlib import Path

from thermodiff.reporting.figures import Shown
from thermodiff.reporting.tables import Table


def cell(text: str) -> str:
    """A table cell's text with the pipes escaped, on one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def table_md(t: Table) -> list[str]:
    """A titled Markdown table with its note."""
    lines = [f"## {t.title}", ""]
    if t.note:
        lines += [t.note, ""]
    lines.append("| " + " | ".join(cell(h) for h in t.headers) + " |")
    lines.append("|" + "---|" * len(t.headers))
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
    return [*lines, ""]


def figures_md(name: str, figures: list[Shown], report_dir: Path) -> list[str]:
    """An experiment's figures, each linked relative to the report and captioned, or named missing."""
    lines = [f"### {name}", ""]
    if not figures:
        lines += ["No figures recorded for this run.", ""]
    for f in figures:
        if f.path is not None:
            rel = Path(os.path.relpath(f.path.resolve(), Path(report_dir).resolve())).as_posix()
            lines += [f"![{cell(f.name)}]({rel})", "", f"**{f.name}.** {f.caption}", ""]
        else:
            lines += [f"**{f.name}: missing** ({f.missing}). {f.caption}", ""]
    return lines


def render_md(title: str, intro: list[str], tables: list[Table], figures: dict, report_dir: Path) -> str:
    """The whole report; `figures`: experiment name -> its figures (finished experiments only)."""
    lines = [f"# {title}", "", *intro, ""]
    for t in tables:
        lines += table_md(t)
    if figures:
        lines += ["## Figures", ""]
        for name, shown in figures.items():
            lines += figures_md(name, shown, report_dir)
    return "\n".join(lines).rstrip() + "\n"
