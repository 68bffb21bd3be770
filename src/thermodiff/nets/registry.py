"""The network registry: each name, its builder and the kind of example it takes (one entry per net).

A builder is `(model config, shape, T, out_channels, seed) -> nn.Module` for data of `shape` (without
batch) with `out_channels` raw outputs along dim 1 (all outputs for vector data; channels for images).
The config's choices for model.net and its net/data kind rule come from here (config/rules.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from thermodiff.errors import ConfigError
from thermodiff.lists import EXAMPLE_KINDS, int_list
from thermodiff.nets.imported import build_imported, check_raw_width
from thermodiff.nets.mlp import MLP, PerStepMLP, RBFNet
from thermodiff.nets.multiscale import PaperImageNet
from thermodiff.nets.unet import UNet

if TYPE_CHECKING:
    from thermodiff.config.schema import ModelConfig

Builder = Callable[["ModelConfig", tuple[int, ...], int, int, int], nn.Module]


@dataclass(frozen=True)
class NetEntry:
    """A builder and the kind of example its network takes: "vectors" or "images" (C, H, W)."""

    build: Builder
    kind: str


def _mlp(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int) -> nn.Module:
    return MLP(
        math.prod(shape),
        T,
        out_channels,
        hidden=cfg.hidden,
        layers=cfg.layers,
        time_embed=cfg.time_embed,
        fourier=cfg.fourier,
        fourier_scale=cfg.fourier_scale,
        seed=seed,
    )


def _paper_mlp(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int) -> nn.Module:
    return PerStepMLP(math.prod(shape), T, out_channels, hidden=cfg.hidden, layers=cfg.layers)


def _rbf(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int) -> nn.Module:
    return RBFNet(math.prod(shape), T, out_channels, units=cfg.rbf_units, seed=seed)


def _paper_image(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int) -> nn.Module:
    return PaperImageNet(
        shape,
        T,
        out_channels // shape[0],
        n_conv_layers=cfg.conv_layers,
        conv_channels=cfg.conv_channels,
        n_scales=cfg.n_scales,
        dense_layers=cfg.dense_layers,
        dense_hidden=cfg.dense_hidden,
        dense_out=cfg.dense_out,
        pixel_hidden=cfg.pixel_hidden,
        pixel_layers=cfg.pixel_layers,
        J=cfg.n_bumps,
    )


def _unet(cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int) -> nn.Module:
    return UNet(
        shape,
        out_channels // shape[0],
        base=cfg.base,
        mults=int_list(cfg.mults),
        num_res_blocks=cfg.num_res_blocks,
        attn_resolutions=int_list(cfg.attn_resolutions),
        dropout=cfg.dropout,
        heads=cfg.heads,
    )


NETS: dict[str, NetEntry] = {
    "mlp": NetEntry(_mlp, "vectors"),
    "paper_mlp": NetEntry(_paper_mlp, "vectors"),
    "rbf": NetEntry(_rbf, "vectors"),
    "paper_image": NetEntry(_paper_image, "images"),
    "unet": NetEntry(_unet, "images"),
}


def register_net(name: str, build: Builder, kind: str) -> NetEntry:
    """Add a network under `name` (then model.net = name validates, trains and loads back)."""
    if kind not in EXAMPLE_KINDS:
        raise ValueError(f"a network takes one of {', '.join(EXAMPLE_KINDS)}, not {kind!r}")
    NETS[name] = NetEntry(build, kind)
    return NETS[name]


def build_net(
    cfg: ModelConfig, shape: tuple[int, ...], T: int, out_channels: int, seed: int = 0
) -> nn.Module:
    """Config -> the registered network (or model.net = "module:Class", imported) for data of `shape`
    with `out_channels` raw outputs."""
    if ":" in cfg.net:
        net = build_imported(cfg, shape, T, out_channels)
        check_raw_width(net, shape, T, out_channels, repr(cfg.net))
        return net
    if cfg.net not in NETS:
        raise ConfigError(f"model.net = {cfg.net!r} is not one of {', '.join(NETS)}")
    try:
        return NETS[cfg.net].build(cfg, shape, T, out_channels, seed)
    except ValueError as e:
        raise ConfigError(f"model: {e}") from None
