"""The report as one self-contained HTML page: inline style, images as data: URIs, no script, no link
out of the page, so that it opens the same offline, from anywhere, in any browser."""

from __future__ import annotations

from html import escape

from thermodiff.reporting.figures import Shown, data_uri, pixel_width
from thermodiff.reporting.tables import Table

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1150px; padding: 0 1em;
       color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; } h3 { font-size: 1.08em; }
p.note { color: #444; max-width: 60em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .55em; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
figure { margin: 0 0 1.4em; padding: .6em; border: 1px solid #ddd; display: inline-block; max-width: 100%;
         box-sizing: border-box; vertical-align: top; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { max-width: 48em; margin-top: .4em; font-size: .92em; }
.missing { background: #fff3f3; border-color: #d99; }
"""


def is_number(text: str) -> bool:
    """Whether a cell holds a number (right-aligned), with or without its standard error."""
    head = text.split(" ")[0].replace("−", "-")
    try:
        float(head)
    except ValueError:
        return False
    return True


def table_html(t: Table) -> str:
    """A titled HTML table with its note, scrolling sideways on a narrow window."""
    head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if is_number(c) else ''}>{escape(c)}</td>" for c in row) + "</tr>"
        for row in t.rows
    )
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<h2>{escape(t.title)}</h2>{note}<div class="scroll">{table}</div>'


def figure_html(f: Shown) -> str:
    """A figure embedded beside its caption, or a box naming it missing with the reason."""
    if f.path is not None:
        width = pixel_width(f.path)
        scale = 600 // width if width else 0  # a small sample grid, enlarged with its pixels kept sharp
        size = f' style="width:{width * scale}px;image-rendering:pixelated"' if scale > 1 else ""
        img = f'<img src="{data_uri(f.path)}" alt="{escape(f.name)}"{size}>'
        return f"<figure>{img}<figcaption><b>{escape(f.name)}.</b> {escape(f.caption)}</figcaption></figure>"
    text = f"<b>{escape(f.name)}: missing</b> ({escape(f.missing or '')}). {escape(f.caption)}"
    return f'<figure class="missing"><figcaption>{text}</figcaption></figure>'


def render_html(title: str, intro: list[str], tables: list[Table], figures: dict) -> str:
    """The whole report; `figures`: experiment name -> its figures (finished experiments only)."""
    parts = [f"<h1>{escape(title)}</h1>", *(f"<p>{escape(p)}</p>" for p in intro)]
    parts += [table_html(t) for t in tables]
    if figures:
        parts.append("<h2>Figures</h2>")
        for name, shown in figures.items():
            parts.append(f"<h3>{escape(name)}</h3>")
            parts += [figure_html(f) for f in shown] or ["<p>No figures recorded for this run.</p>"]
    head = f'<meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style>'
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head><body>\n'
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
