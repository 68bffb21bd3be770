"""Where the data files are: an explicit root, never the package's own location."""

from __future__ import annotations

import os
from pathlib import Path

from thermodiff.errors import DataError

ENV = "THERMODIFF_DATA"


def data_root(what: str = "the data") -> Path:
    """$THERMODIFF_DATA; unset or empty, a one-line DataError naming it and data.path (the loaders
    read data.path first and ask here only when it is empty). `what`: the files looked for."""
    env = os.environ.get(ENV, "")
    if not env:
        raise DataError(f"{what}: data.path is empty and {ENV} is not set: set either to find the files")
    return Path(env)
