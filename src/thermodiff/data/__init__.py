"""Data sets -> tensors in model space + a DataSpec; continuous data standardized by one constant."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from thermodiff.config import DataConfig
from thermodiff.data import toy
from thermodiff.errors import DataError


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
    """y = (x - shift) * scale. Scaling.fit takes one global shift and scale, the paper code's scalar
    pair (PAPER.md 1.4), so that K is in the paper's units; older runs may hold per-dimension shifts."""

    shift: tuple[float, ...]
    scale: float

    @staticmethod
    def fit(x: Tensor) -> Scaling:
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        mean = flat.mean().item()
        # Around the global mean, not each dimension's: per-dimension centring shrinks the variance
        # of MNIST by (66.2 / 78.7)^2 and would move K by 0.25 bits/dim from the paper's units.
        var = flat.sub(mean).square().mean().item()
        if not var > 0:
            raise DataError("every training value is the same value: nothing to scale to unit variance")
        if not var < math.inf:
            raise DataError("the training values' variance overflows: nothing to scale to unit variance")
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


def dequantize(x: Tensor, scale: float, generator: torch.Generator | None = None) -> Tensor:
    """Add uniform noise of one grey level, centred on each value: integer data in model space
    (step = scale) become a continuous density whose bound never beats the discrete likelihood."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + (u - 0.5) * scale


def _continuous(raw_train: Tensor, raw_test: Tensor, unit: str, raw_log_prob=None) -> Dataset:
    scaling = Scaling.fit(raw_train)
    d = math.prod(raw_train.shape[1:])
    log_prob = None
    if raw_log_prob is not None:

        def log_prob(y: Tensor) -> Tensor:
            return raw_log_prob(scaling.invert(y.to(torch.float64))) - scaling.log_det(d)

    spec = DataSpec(tuple(raw_train.shape[1:]), "continuous", unit)
    return Dataset(scaling.apply(raw_train), scaling.apply(raw_test), spec, scaling, log_prob)


def _swiss_roll(cfg: DataConfig) -> Dataset:
    return _continuous(
        toy.swiss_roll(cfg.n_train, cfg.sigma, cfg.seed),
        toy.swiss_roll(cfg.n_test, cfg.sigma, cfg.seed + 1),
        "bits/example",
        lambda x: toy.swiss_roll_log_prob(x, cfg.sigma),
    )


def _gaussian(cfg: DataConfig) -> Dataset:
    return _continuous(
        toy.gaussian_data(cfg.n_train, cfg.seed),
        toy.gaussian_data(cfg.n_test, cfg.seed + 1),
        "bits/example",
        toy.gaussian_log_prob,
    )


def _lazy(module: str, name: str) -> Callable[[DataConfig], Dataset]:
    """A loader in a submodule (imported on use: the submodules import Dataset from here)."""

    def load(cfg: DataConfig) -> Dataset:
        import importlib

        return getattr(importlib.import_module(f"thermodiff.data.{module}"), name)(cfg)

    return load


DATASETS: dict[str, Callable[[DataConfig], Dataset]] = {
    "swiss_roll": _swiss_roll,
    "gaussian": _gaussian,
    "heartbeat": _lazy("binary", "heartbeat"),
    "binarized_mnist": _lazy("binary", "binarized_mnist"),
    "mnist": _lazy("images", "mnist"),
    "cifar10": _lazy("cifar", "cifar10"),
    "image_folder": _lazy("images", "image_folder_dataset"),
    "dead_leaves": _lazy("textures", "dead_leaves_dataset"),
    "bark": _lazy("textures", "bark"),
}


def load_dataset(cfg: DataConfig) -> Dataset:
    """Config -> Dataset; a one-line DataError for unknown names, missing files, bad shapes, NaNs."""
    if cfg.name not in DATASETS:
        raise DataError(f"data.name = {cfg.name!r} is not one of {', '.join(DATASETS)}")
    ds = DATASETS[cfg.name](cfg)
    for split, x in (("train", ds.train), ("test", ds.test)):
        if not torch.isfinite(x).all():
            raise DataError(f"{cfg.name}: the {split} split contains NaN or infinite values")
    return ds
