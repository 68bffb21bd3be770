"""The noisy classifier's network p(y | x_t, t): the DDPM U-Net's encoder, pooled, with a linear head
(Dhariwal & Nichol 2021, ADM 4.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from thermodiff.errors import ConfigError
from thermodiff.lists import int_list
from thermodiff.nets.time import sinusoidal_embedding
from thermodiff.nets.unet import Downsample, ResBlock, group_norm

if TYPE_CHECKING:
    from thermodiff.config.schema import ModelConfig

TASKS = ("classifier", "clean_classifier")  # the train.task values that train this network


class NoisyClassifier(nn.Module):
    """Encoder half of the DDPM U-Net + global average pool + linear head: (x_t, t) -> logits (ADM)."""

    def __init__(
        self, shape: tuple[int, ...], n_classes: int, base: int, mults: tuple[int, ...], blocks: int
    ):
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"a classifier needs image data (C, H, W), got shape {shape}")
        self.base, temb = base, 4 * base
        self.temb = nn.Sequential(nn.Linear(base, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(shape[0], base, 3, padding=1)
        layers, c = [], base
        for i, m in enumerate(mults):
            for _ in range(blocks):
                layers.append(ResBlock(c, base * m, temb, 0.0))  # no dropout: exact resume (ADM: 0)
                c = base * m
            if i < len(mults) - 1:
                layers.append(Downsample(c))
        self.layers = nn.ModuleList(layers)
        self.norm_out = group_norm(c)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x: (B, C, H, W), t: (B,) integer -> logits (B, n_classes)."""
        emb = self.temb(sinusoidal_embedding(t, self.base))
        h = self.conv_in(x)
        for layer in self.layers:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return self.head(F.silu(self.norm_out(h)).mean((2, 3)))


def build_classifier(
    cfg: ModelConfig, shape: tuple[int, ...], n_classes: int, seed: int = 0
) -> NoisyClassifier:
    """Config -> classifier: model.base, model.mults, model.num_res_blocks (initialised from `seed`)."""
    torch.manual_seed(seed)
    return NoisyClassifier(shape, n_classes, cfg.base, int_list(cfg.mults), cfg.num_res_blocks)
