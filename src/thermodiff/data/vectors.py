"""The vector data sets with a known density: the swiss roll (P 3.1.1) and a 2-D Gaussian, standardized."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from thermodiff.data import Dataset, DataSpec, Scaling, toy

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig


def continuous_dataset(
    raw_train: Tensor, raw_test: Tensor, unit: str = "bits/example", raw_log_prob=None
) -> Dataset:
    """Raw splits -> a Dataset standardized by the training split's Scaling; the true log-density
    (nats per example, raw units) carried into model space by the Jacobian."""
    scaling = Scaling.fit(raw_train)
    d = math.prod(raw_train.shape[1:])
    log_prob = None
    if raw_log_prob is not None:

        def log_prob(y: Tensor) -> Tensor:
            return raw_log_prob(scaling.invert(y.to(torch.float64))) - scaling.log_det(d)

    spec = DataSpec(tuple(raw_train.shape[1:]), "continuous", unit)
    return Dataset(scaling.apply(raw_train), scaling.apply(raw_test), spec, scaling, log_prob)


def swiss_roll(cfg: DataConfig) -> Dataset:
    """The swiss roll of P Fig. 1, seeds data.seed / data.seed + 1."""
    return continuous_dataset(
        toy.swiss_roll(cfg.n_train, cfg.sigma, cfg.seed),
        toy.swiss_roll(cfg.n_test, cfg.sigma, cfg.seed + 1),
        "bits/example",
        lambda x: toy.swiss_roll_log_prob(x, cfg.sigma),
    )


def gaussian(cfg: DataConfig) -> Dataset:
    """A correlated 2-D Gaussian, whose log-density K must approach from below."""
    return continuous_dataset(
        toy.gaussian_data(cfg.n_train, cfg.seed),
        toy.gaussian_data(cfg.n_test, cfg.seed + 1),
        "bits/example",
        toy.gaussian_log_prob,
    )
