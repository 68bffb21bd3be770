"""Data sets -> tensors in model space + a DataSpec; continuous data standardized by one constant."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from thermodiff.data.sources import DATASETS, DataSource, file_sha256, register_data
from thermodiff.data.units import Units
from thermodiff.errors import DataError

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig


@dataclass(frozen=True)
class DataSpec:
    shape: tuple[int, ...]  # one example, without batch
    kind: str  # continuous | binary | image8 (integers 0..255, standardized)
    unit: str  # what one example is called in reported bounds: bits/example, bits/sequence ...

    @property
    def units_per_example(self) -> int:
        """Pixels per image for bits/pixel (P Table 1: colour channels summed), else 1."""
        return math.prod(self.shape[1:]) if self.unit == "bits/pixel" else 1


@dataclass(frozen=True)
class Scaling:
    """y = (x - shift) * scale. Scaling.fit takes one global shift and scale, the scalar pair of the
    paper's reference code, so that K is in the units of P Table 1; older runs may hold per-dimension
    shifts."""

    shift: tuple[float, ...]
    scale: float

    @staticmethod
    def fit(x: Tensor) -> Scaling:
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        mean = flat.mean().item()
        # Around the global mean, not each dimension's: per-dimension centring shrinks the variance
        # of MNIST by (66.2 / 78.7)^2 and would move K by 0.25 bits/dim from the paper's units.
        var = flat.sub(mean).square().mean().item()
        if not (math.isfinite(mean) and math.isfinite(var)):  # e.g. data.sigma = 1e308
            raise DataError(
                "the training values' mean or variance overflows (values too large for float64): "
                "nothing to scale to unit variance"
            )
        if not var > 0:
            raise DataError("every training value is the same value: nothing to scale to unit variance")
        return Scaling((mean,) * flat.shape[1], 1.0 / math.sqrt(var))

    @staticmethod
    def identity(d: int) -> Scaling:
        return Scaling((0.0,) * d, 1.0)

    def apply(self, x: Tensor) -> Tensor:
        shift = torch.tensor(self.shift, dtype=x.dtype).reshape(x.shape[1:])
        return (x - shift) * self.scale

    def invert(self, y: Tensor) -> Tensor:
        shift = torch.tensor(self.shift, dtype=y.dtype, device=y.device).reshape(y.shape[1:])
        return y / self.scale + shift

    def log_det(self, d: int) -> float:
        """log |dy/dx| = d log scale: log p_y(y) = log p_x(x) - d log scale."""
        return d * math.log(self.scale)


@dataclass
class Dataset:
    train: Tensor  # model space, float64
    test: Tensor
    spec: DataSpec
    scaling: Scaling
    true_log_prob: Callable[[Tensor], Tensor] | None = None  # model space -> nats per example
    labels_train: Tensor | None = None  # int64 (N,) class labels where the data set has them (MNIST)
    labels_test: Tensor | None = None

    @property
    def units(self) -> Units:
        """Conversions between model space, data units and pixels (units.py)."""
        return Units(self.spec, self.scaling)


def dequantize(x: Tensor, scale: float, generator: torch.Generator | None = None) -> Tensor:
    """Add uniform noise of one grey level, centred on each value: integer data in model space
    (step = scale) become a continuous density whose bound never beats the discrete likelihood."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + (u - 0.5) * scale


def load_dataset(cfg: DataConfig) -> Dataset:
    """Config -> Dataset; a one-line DataError for unknown names, missing files, bad shapes, NaNs."""
    if cfg.name not in DATASETS:
        raise DataError(f"data.name = {cfg.name!r} is not one of {', '.join(DATASETS)}")
    if cfg.sha256:
        check_sha256(Path(cfg.path), cfg.sha256)
    ds = DATASETS[cfg.name].load(cfg)
    for split, x in (("train", ds.train), ("test", ds.test)):
        if not torch.isfinite(x).all():
            raise DataError(f"{cfg.name}: the {split} split contains NaN or infinite values")
    return ds


def check_sha256(path: Path, sha256: str) -> None:
    """The file a run was trained on, unchanged: a moved or changed file is a one-line DataError."""
    if not path.is_file():
        raise DataError(f"{path}: not found; the run was trained on this file (data.path): put it back there")
    if file_sha256(path) != sha256:
        raise DataError(
            f"{path}: its content differs from the file the run was trained on (sha256 {sha256[:12]}...): "
            "restore it, or train a new run on it"
        )


__all__ = [
    "DATASETS",
    "DataSource",
    "DataSpec",
    "Dataset",
    "Scaling",
    "Units",
    "dequantize",
    "load_dataset",
    "register_data",
]
