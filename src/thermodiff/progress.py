"""Progress bars on stderr for long work (tqdm): off unless a caller turns them on, as the CLI does when
stderr is a terminal and --quiet is not given. A leaf: imports nothing of thermodiff."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_SHOWN = contextvars.ContextVar("thermodiff_progress", default=False)


@contextmanager
def shown(on: bool = True) -> Iterator[None]:
    """Within the block, long loops (sampling chains, evaluations, Parzen) draw a bar on stderr."""
    token = _SHOWN.set(on)
    try:
        yield
    finally:
        _SHOWN.reset(token)


def bar(total: int, desc: str) -> Any:
    """A tqdm bar on stderr (cleared when done) while bars are shown, else None."""
    if not _SHOWN.get() or total <= 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


def counted(fn: Callable, total: int, desc: str) -> tuple[Callable, Any]:
    """(fn ticking a bar once per call, the bar) while bars are shown, else (fn, None): the network
    calls of an evaluation, whose loops live in code that must not know about bars."""
    b = bar(total, desc)
    if b is None:
        return fn, None

    def ticking(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        b.update(1)
        return out

    return ticking, b
