"""The data set registry: each name, its loader and the kind of example it gives (one entry per set).

The config's choices for data.name and its net/data kind rule come from here (config/rules.py); loaders
are named by module and function and imported on first use, so that the config can import this
module (its dataclasses are imported for type checking only).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from thermodiff.lists import EXAMPLE_KINDS

if TYPE_CHECKING:
    from thermodiff.config import DataConfig
    from thermodiff.data import Dataset


@dataclass(frozen=True)
class DataSource:
    """A loader `DataConfig -> Dataset` ("module:function", imported on use, or a callable) and the
    kind of example it gives: "vectors" or "images" (C, H, W)."""

    loader: str | Callable[[DataConfig], Dataset]
    kind: str

    def load(self, cfg: DataConfig) -> Dataset:
        """Call the loader (importing its module the first time)."""
        if callable(self.loader):
            return self.loader(cfg)
        module, name = self.loader.split(":")
        return getattr(importlib.import_module(module), name)(cfg)


DATASETS: dict[str, DataSource] = {
    "swiss_roll": DataSource("thermodiff.data.vectors:swiss_roll", "vectors"),
    "gaussian": DataSource("thermodiff.data.vectors:gaussian", "vectors"),
    "heartbeat": DataSource("thermodiff.data.binary:heartbeat", "vectors"),
    "binarized_mnist": DataSource("thermodiff.data.binary:binarized_mnist", "images"),
    "mnist": DataSource("thermodiff.data.images:mnist", "images"),
    "cifar10": DataSource("thermodiff.data.cifar:cifar10", "images"),
    "image_folder": DataSource("thermodiff.data.images:image_folder_dataset", "images"),
    "dead_leaves": DataSource("thermodiff.data.textures:dead_leaves_dataset", "images"),
    "bark": DataSource("thermodiff.data.textures:bark", "images"),
}


def register_data(name: str, loader: str | Callable[[DataConfig], Dataset], kind: str) -> DataSource:
    """Add a data set under `name` (then data.name = name validates, trains and loads back)."""
    if kind not in EXAMPLE_KINDS:
        raise ValueError(f"a data set gives one of {', '.join(EXAMPLE_KINDS)}, not {kind!r}")
    DATASETS[name] = DataSource(loader, kind)
    return DATASETS[name]
