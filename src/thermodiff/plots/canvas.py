"""Matplotlib without a display (Agg), and saving a figure atomically (a reader never sees half a PNG)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from thermodiff.run.checkpoint import atomic_write_bytes  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Write `fig` to `path` (format from its suffix, PNG by default), cropped to its content; close it.
    A file that already holds these bytes is left untouched (a finished run, resumed, is unchanged)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    path = Path(path)
    if not path.is_file() or path.read_bytes() != buf.getvalue():
        atomic_write_bytes(path, buf.getvalue())
    return path
