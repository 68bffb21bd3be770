"""The paper's image network (P §3.2, App. D.2.1, Fig. D.1): multi-scale convolutions and an optional
dense pathway, a per-pixel MLP, and the temporal bump readout. Maps (x_t, t) -> raw (B, k*C, H, W)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from thermodiff.nets.time import TemporalBumpReadout


def max_scales(h: int, w: int) -> int:
    """Number of power-of-2 scales down to (and including) the first one of 1 pixel (P D.2.1)."""
    return 1 + math.ceil(math.log2(max(min(h, w), 1)))


class MultiScaleConv(nn.Module):
    """One multi-scale convolution layer (P D.2.1, Fig. D.1; Barron et al. 2013): mean-pool to scales
    1, 1/2, 1/4, ..., a kernel x kernel conv at each, nearest-upsample all, average, softplus."""

    def __init__(self, c_in: int, c_out: int, n_scales: int, kernel: int = 3):
        super().__init__()
        if n_scales < 1 or kernel % 2 != 1:
            raise ValueError(f"need n_scales >= 1 and an odd kernel, got {n_scales}, {kernel}")
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2) for _ in range(n_scales)
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, c_in, H, W) -> (B, c_out, H, W). Scales beyond a 1-pixel image are not used;
        sizes not divisible by 2^s are handled by partial edge windows (mean over the real pixels)."""
        H, W = x.shape[-2:]
        n = min(len(self.convs), max_scales(H, W))
        acc = self.convs[0](x)
        for s in range(1, n):
            f = 2**s
            xs = F.avg_pool2d(x, f, stride=f, ceil_mode=True, count_include_pad=False)
            ys = self.convs[s](xs)  # (B, c_out, ceil(H/f), ceil(W/f))
            ys = ys.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)[..., :H, :W]
            acc = acc + ys
        return F.softplus(acc / n)


class PaperImageNet(nn.Module):
    """Conv pathway (multi-scale layers) || dense pathway (tanh MLP, dense_out features per pixel),
    then per-pixel tanh layers and a linear readout of J bump coefficients per output (P D.2.1)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        T: int,
        out_factor: int,
        n_conv_layers: int = 4,
        conv_channels: int = 32,
        n_scales: int = 3,
        dense_layers: int = 0,
        dense_hidden: int = 500,
        dense_out: int = 2,
        pixel_hidden: int = 32,
        pixel_layers: int = 2,
        J: int = 10,
    ):
        super().__init__()
        C, H, W = shape
        if n_conv_layers <= 0 and dense_layers <= 0:
            raise ValueError("PaperImageNet needs a conv pathway (n_conv_layers > 0) or a dense one")
        self.shape = (C, H, W)
        self.dense_out = dense_out
        n_scales = min(n_scales, max_scales(H, W))
        self.conv = nn.Sequential(
            *(
                MultiScaleConv(C if i == 0 else conv_channels, conv_channels, n_scales)
                for i in range(n_conv_layers)
            )
        )
        # dense pathway: dense_layers linear layers, each followed by tanh (R MLP_conv_dense, lower part)
        dims = [C * H * W] + [dense_hidden] * (dense_layers - 1) + [dense_out * H * W]
        self.dense = nn.Sequential(
            *(m for a, b in zip(dims[:-1], dims[1:], strict=True) for m in (nn.Linear(a, b), nn.Tanh()))
            if dense_layers > 0
            else ()
        )
        widths = ([conv_channels] if n_conv_layers > 0 else []) + ([dense_out] if dense_layers > 0 else [])
        # each pathway divided by sqrt(its channel count) when both are concatenated, as in R.
        self.path_scale = [1.0 / math.sqrt(c) for c in widths] if len(widths) == 2 else [1.0]
        n_feat = sum(widths)
        pixel = []
        for _ in range(pixel_layers):
            pixel += [nn.Conv2d(n_feat, pixel_hidden, 1), nn.Tanh()]
            n_feat = pixel_hidden
        self.pixel = nn.Sequential(*pixel)
        self.readout = nn.Conv2d(n_feat, out_factor * C * J, 1)  # channel = k * J + j
        nn.init.zeros_(self.readout.weight)  # zero raw output: the chain starts at equilibrium
        nn.init.zeros_(self.readout.bias)
        self.bumps = TemporalBumpReadout(T, J)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x: (B, C, H, W), t: (B,) integer -> (B, out_factor * C, H, W); t enters only via the bumps."""
        B = x.shape[0]
        feats = []
        if len(self.conv):
            feats.append(self.conv(x))
        if len(self.dense):
            y = self.dense(x.reshape(B, -1))
            feats.append(y.reshape(B, self.dense_out, *self.shape[1:]))
        h = torch.cat([f * s for f, s in zip(feats, self.path_scale, strict=True)], dim=1)
        return self.bumps(self.readout(self.pixel(h)), t)
