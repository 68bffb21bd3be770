"""A run's figures as eval.json lists them, each found on disk or named missing with its reason."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from thermodiff.reporting.collect import Entry

MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".gif": "image/gif",
}


@dataclass(frozen=True)
class Shown:
    """One figure as the report shows it: the file when found, else why it is missing."""

    name: str
    caption: str
    path: Path | None
    missing: str | None


def locate(recorded: str, run_dir: Path) -> Path | None:
    """The file a figure record names: as written (absolute, or relative to where reproduce ran), else
    the same path's tail under the run directory (the report may be read from elsewhere)."""
    p = Path(recorded)
    if p.is_absolute() and p.is_file():
        return p
    parts = p.parts
    for i in range(len(parts)):
        candidate = Path(run_dir) / Path(*parts[i:])
        if candidate.is_file():
            return candidate
    return p.resolve() if p.is_file() else None


def shown(entry: Entry) -> list[Shown]:
    """Every figure eval.json lists for the entry, in its order; none is dropped."""
    out = []
    for f in entry.figures:
        name, caption = str(f.get("name", "?")), str(f.get("caption", ""))
        if f.get("path"):
            path = locate(str(f["path"]), entry.run_dir)
            missing = None if path else f"file not found: {f['path']}"
            out.append(Shown(name, caption, path, missing))
        else:
            out.append(Shown(name, caption, None, str(f.get("missing") or "not drawn (no reason recorded)")))
    return out


def data_uri(path: Path) -> str:
    """The image file as a data: URI, so that the HTML page needs no other file."""
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def pixel_width(path: Path) -> int | None:
    """A PNG's width in pixels from its header (None for other formats or a short file)."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big")
