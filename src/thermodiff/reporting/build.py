"""The report of a reproduction into DIR: report.md and report.html, as texts for the caller to write."""

from __future__ import annotations

import datetime
from pathlib import Path

from thermodiff.reporting.collect import collect
from thermodiff.reporting.figures import shown
from thermodiff.reporting.html import render_html
from thermodiff.reporting.markdown import render_md
from thermodiff.reporting.tables import tables

TITLE = "thermodiff: a reproduction of Sohl-Dickstein et al. 2015"


def build_report(
    out: Path, names: list[str], budget: str, known: list[str] | None = None, failed: dict | None = None
) -> dict[str, str]:
    """{file name: text} for DIR/report.md and DIR/report.html, from the runs as they stand now;
    failed: {name: why} for the experiments reproduce could not finish."""
    out = Path(out)
    entries = collect(out, names, budget, known, failed)
    done = [x for x in entries if x.status == "done"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = [
        f"Written {now}: {len(done)} of {len(entries)} experiment(s) finished. Every number below is read "
        "from the runs' own files (eval.json, whose cost reproduce read from the run), except the "
        "published references, each named with its paper and table. Rerun the same command to resume: "
        "finished experiments are kept, an interrupted one continues from its last checkpoint.",
    ]
    figures = {x.name: shown(x) for x in done}
    table_list = tables(entries)
    return {
        "report.md": render_md(TITLE, intro, table_list, figures, out),
        "report.html": render_html(TITLE, intro, table_list, figures),
    }
