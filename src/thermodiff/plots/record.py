"""A figure as a record: drawn, with its caption, or named as missing with the reason, so that a report
can say what is absent instead of silently leaving it out, and a failed figure never fails its caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One figure of a run: a stable name, its caption, the file (None when missing) and why it is missing."""

    name: str
    caption: str
    path: str | None = None
    missing: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def draw(name: str, caption: str, make: Callable[[], Path | tuple[Path, str]]) -> Figure:
    """Draw one figure; a failure to draw it is recorded on the Figure, never raised or dropped. `make`
    returns the file, or (file, caption) where the caption states what only the drawing measured."""
    try:
        made = make()
        path, caption = made if isinstance(made, tuple) else (made, caption)
        return Figure(name, caption, str(path))
    except Exception as err:  # noqa: BLE001 - any failure becomes the figure's stated absence
        return Figure(name, caption, None, f"{type(err).__name__}: {err}")
