"""Networks: (x_t, t) -> raw tensor. They know nothing of schedules or losses."""

from __future__ import annotations

import math

from torch import nn

from thermodiff.config import ModelConfig
from thermodiff.nets.mlp import MLP, PerStepMLP, RBFNet


def build_net(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_factor: int, seed: int = 0) -> nn.Module:
    """Config -> network for data of `shape` (without batch); the dict literal is the registry."""
    d = math.prod(shape)
    builders = {
        "rbf": lambda: RBFNet(d, T, out_factor, units=cfg.rbf_units, seed=seed),
        "paper_mlp": lambda: PerStepMLP(d, T, out_factor, hidden=cfg.hidden, layers=cfg.layers),
        "mlp": lambda: MLP(
            d,
            T,
            out_factor,
            hidden=cfg.hidden,
            layers=cfg.layers,
            time_embed=cfg.time_embed,
            fourier=cfg.fourier,
            fourier_scale=cfg.fourier_scale,
            seed=seed,
        ),
    }
    if cfg.net not in builders:
        from thermodiff.errors import ConfigError

        raise ConfigError(f"model.net = {cfg.net!r} is not one of {', '.join(builders)}")
    return builders[cfg.net]()


__all__ = ["MLP", "PerStepMLP", "RBFNet", "build_net"]
