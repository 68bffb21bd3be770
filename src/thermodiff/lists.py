"""Names and lists shared by the config rules and the registries: a leaf (imports nothing of thermodiff),
so that config, data and nets can all import it without a cycle."""

from __future__ import annotations

EXAMPLE_KINDS = ("vectors", "images")  # what a data set gives and a network takes (the kind rule)


def int_list(text: str) -> tuple[int, ...] | None:
    """'1,2,2' -> (1, 2, 2), '' -> (); None unless every item is a non-negative integer."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    return tuple(int(s) for s in items) if all(s.isascii() and s.isdigit() for s in items) else None
