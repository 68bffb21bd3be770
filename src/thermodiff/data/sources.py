"""The data set registry: each name, its loader and the kind of example it gives (one entry per set).

The config's choices for data.name and its net/data kind rule come from here (config/rules.py); loaders
are named by module and function and imported on first use, so that the config can import this
module (its dataclasses are imported for type checking only).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from thermodiff.lists import EXAMPLE_KINDS

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig
    from thermodiff.data import Dataset


@dataclass(frozen=True)
class DataSource:
    """A loader `DataConfig -> Dataset` ("module:function", imported on use, or a callable) and the
    kind of example it gives: "vectors" or "images" (C, H, W)."""

    loader: str | Callable[[DataConfig], Dataset]
    kind: str  # "vectors", "images", or "any": decided by the file (data.name = "array")
    reads_path: bool = True  # False: generated, so a data.path is refused rather than ignored

    def load(self, cfg: DataConfig) -> Dataset:
        """Call the loader (importing its module the first time)."""
        if callable(self.loader):
            return self.loader(cfg)
        module, name = self.loader.split(":")
        return getattr(importlib.import_module(module), name)(cfg)


DATASETS: dict[str, DataSource] = {
    "swiss_roll": DataSource("thermodiff.data.vectors:swiss_roll", "vectors", reads_path=False),
    "gaussian": DataSource("thermodiff.data.vectors:gaussian", "vectors", reads_path=False),
    "heartbeat": DataSource("thermodiff.data.binary:heartbeat", "vectors", reads_path=False),
    "binarized_mnist": DataSource("thermodiff.data.binary:binarized_mnist", "images"),
    "mnist": DataSource("thermodiff.data.images:mnist", "images"),
    "cifar10": DataSource("thermodiff.data.cifar:cifar10", "images"),
    "image_folder": DataSource("thermodiff.data.images:image_folder_dataset", "images"),
    "dead_leaves": DataSource("thermodiff.data.textures:dead_leaves_dataset", "images", reads_path=False),
    "bark": DataSource("thermodiff.data.textures:bark", "images"),
    "array": DataSource("thermodiff.data.arrays:array_dataset", "any"),
}


def register_data(
    name: str, loader: str | Callable[[DataConfig], Dataset], kind: str, reads_path: bool = True
) -> DataSource:
    """Add a data set under `name` (then data.name = name validates, trains and loads back);
    reads_path=False for generated data (a data.path is then refused)."""
    if kind not in EXAMPLE_KINDS:
        raise ValueError(f"a data set gives one of {', '.join(EXAMPLE_KINDS)}, not {kind!r}")
    DATASETS[name] = DataSource(loader, kind, reads_path)
    return DATASETS[name]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (a run records it for the data file it was trained on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pin_path(cfg: DataConfig) -> DataConfig:
    """data.path made absolute and, for a file, its SHA-256 recorded (a run then reloads that file and no
    other, from any working directory); a data set that reads no path, or none given, is unchanged."""
    if not cfg.path or not DATASETS[cfg.name].reads_path:
        return cfg
    path = Path(cfg.path).expanduser().resolve()
    sha256 = cfg.sha256 or (file_sha256(path) if path.is_file() else "")
    return replace(cfg, path=str(path), sha256=sha256)
