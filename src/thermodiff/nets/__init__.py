"""Networks: (x_t, t) -> raw tensor. They know nothing of schedules or losses."""

from __future__ import annotations

import math

from torch import nn

from thermodiff.config import ModelConfig
from thermodiff.config.rules import int_list
from thermodiff.errors import ConfigError
from thermodiff.nets.classifier import NoisyClassifier, build_classifier
from thermodiff.nets.mlp import MLP, PerStepMLP, RBFNet
from thermodiff.nets.multiscale import MultiScaleConv, PaperImageNet
from thermodiff.nets.unet import UNet


def build_net(
    cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int = 0
) -> nn.Module:
    """Config -> network for data of `shape` (without batch) with `out_channels` raw outputs along
    dim 1 (all outputs for vector data; channels for images); the dict literal is the registry."""
    d = math.prod(shape)
    out_factor = out_channels // shape[0]
    builders = {
        "rbf": lambda: RBFNet(d, T, out_channels, units=cfg.rbf_units, seed=seed),
        "paper_mlp": lambda: PerStepMLP(d, T, out_channels, hidden=cfg.hidden, layers=cfg.layers),
        "mlp": lambda: MLP(
            d,
            T,
            out_channels,
            hidden=cfg.hidden,
            layers=cfg.layers,
            time_embed=cfg.time_embed,
            fourier=cfg.fourier,
            fourier_scale=cfg.fourier_scale,
            seed=seed,
        ),
        "paper_image": lambda: PaperImageNet(
            shape,
            T,
            out_factor,
            n_conv_layers=cfg.conv_layers,
            conv_channels=cfg.conv_channels,
            n_scales=cfg.n_scales,
            dense_layers=cfg.dense_layers,
            dense_hidden=cfg.dense_hidden,
            dense_out=cfg.dense_out,
            pixel_hidden=cfg.pixel_hidden,
            pixel_layers=cfg.pixel_layers,
            J=cfg.n_bumps,
        ),
        "unet": lambda: UNet(
            shape,
            out_factor,
            base=cfg.base,
            mults=int_list(cfg.mults),
            num_res_blocks=cfg.num_res_blocks,
            attn_resolutions=int_list(cfg.attn_resolutions),
            dropout=cfg.dropout,
            heads=cfg.heads,
        ),
    }
    if cfg.net not in builders:
        raise ConfigError(f"model.net = {cfg.net!r} is not one of {', '.join(builders)}")
    try:
        return builders[cfg.net]()
    except ValueError as e:
        raise ConfigError(f"model: {e}") from None


__all__ = [
    "MLP",
    "MultiScaleConv",
    "NoisyClassifier",
    "PaperImageNet",
    "PerStepMLP",
    "RBFNet",
    "UNet",
    "build_classifier",
    "build_net",
]
