"""A DDPM-style U-Net (Ho et al. 2020, App. B; the PixelCNN++/Wide-ResNet backbone): (x_t, t) -> raw
(B, out_factor * C, H, W). With base=128, mults=(1,2,2,2), 2 res blocks, attention at 16x16 on 3x32x32
it is Ho et al.'s CIFAR-10 model (35.7M parameters for out_factor=1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from thermodiff.nets.time import sinusoidal_embedding


def group_norm(c: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= 32 that divides c; eps 1e-6 as in DDPM."""
    groups = max(g for g in range(1, 33) if c % g == 0)
    return nn.GroupNorm(groups, c, eps=1e-6)


class ResBlock(nn.Module):
    """norm-SiLU-conv, + projected time embedding, norm-SiLU-dropout-conv, 1x1 skip if widths differ."""

    def __init__(self, c_in: int, c_out: int, temb: int, dropout: float):
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(temb, c_out)
        self.norm2 = group_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """x: (B, c_in, H, W), emb: (B, temb) -> (B, c_out, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


def _unit_stride(u: Tensor) -> Tensor:
    return u.contiguous() if u.is_cuda and u.stride(-1) != 1 else u


class AttnBlock(nn.Module):
    """Self-attention over all pixels with a residual connection (DDPM: one head at 16x16)."""

    def __init__(self, c: int, heads: int = 1):
        super().__init__()
        if c % heads:
            raise ValueError(f"{c} channels do not split into {heads} heads")
        self.heads = heads
        self.norm = group_norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)  # same parameters as DDPM's separate q, k, v NIN layers
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, c, H, W) -> (B, c, H, W); reshape, not view, so channels_last inputs work."""
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W)
        # each (B, heads, HW, C/heads); CUDA's flash/efficient kernels need unit stride in the last dim,
        # which channels-last activations give for free and NCHW ones only after a copy
        q, k, v = (_unit_stride(u) for u in qkv.transpose(-1, -2).unbind(1))
        h = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(C/heads)
        h = h.transpose(-1, -2).reshape(B, C, H, W)
        return x + self.proj(h)


class Block(nn.Module):
    """A ResBlock optionally followed by attention (one step of a U-Net level)."""

    def __init__(self, c_in: int, c_out: int, temb: int, dropout: float, attn: bool, heads: int):
        super().__init__()
        self.res = ResBlock(c_in, c_out, temb, dropout)
        self.attn = AttnBlock(c_out, heads) if attn else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        return self.attn(self.res(x, emb))


class Downsample(nn.Module):
    """3x3 conv with stride 2; padding (0, 1) on each axis as TF 'SAME' in DDPM."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv (DDPM)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """DDPM U-Net (Ho et al. 2020): sinusoidal t embedding -> MLP (4*base); len(mults) levels of
    num_res_blocks res blocks (+attention at attn_resolutions) going down, a res-attn-res middle,
    num_res_blocks+1 blocks per level going up on concatenated skips. H and W must be divisible by
    2^(len(mults)-1) (e.g. 28x28 allows mults of length 3: 28 -> 14 -> 7)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        out_factor: int,
        base: int = 128,
        mults: tuple[int, ...] = (1, 2, 2, 2),
        num_res_blocks: int = 2,
        attn_resolutions: tuple[int, ...] = (16,),
        dropout: float = 0.1,
        heads: int = 1,
    ):
        super().__init__()
        C, H, W = shape
        f = 2 ** (len(mults) - 1)
        if H % f or W % f:
            raise ValueError(f"image size {H}x{W} is not divisible by 2^(len(mults)-1) = {f}")
        reached = [min(H, W) // 2**i for i in range(len(mults))]
        never = [r for r in attn_resolutions if r not in reached]
        if never:  # silently no attention at all would train another network than the one asked for
            raise ValueError(
                f"attn_resolutions {','.join(map(str, never))} never occur: at {H}x{W} with mults of "
                f"length {len(mults)} the U-Net's resolutions are {','.join(map(str, reached))}"
            )
        self.base = base
        temb = 4 * base
        self.temb = nn.Sequential(nn.Linear(base, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(C, base, 3, padding=1)

        chans = [base]  # widths of the skip activations, in push order
        c, res = base, min(H, W)  # attn_resolutions name the shorter side
        self.down = nn.ModuleList()
        for i, m in enumerate(mults):
            for _ in range(num_res_blocks):
                self.down.append(Block(c, base * m, temb, dropout, res in attn_resolutions, heads))
                c = base * m
                chans.append(c)
            if i < len(mults) - 1:
                self.down.append(Downsample(c))
                chans.append(c)
                res //= 2
        self.mid = nn.ModuleList(
            [Block(c, c, temb, dropout, True, heads), Block(c, c, temb, dropout, False, heads)]
        )
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(num_res_blocks + 1):
                self.up.append(
                    Block(c + chans.pop(), base * m, temb, dropout, res in attn_resolutions, heads)
                )
                c = base * m
            if i > 0:
                self.up.append(Upsample(c))
                res *= 2
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, out_factor * C, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # zero raw output: the chain starts at equilibrium
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x: (B, C, H, W), t: (B,) integer -> (B, out_factor * C, H, W)."""
        emb = self.temb(sinusoidal_embedding(t, self.base))
        hs = [self.conv_in(x)]
        for layer in self.down:
            hs.append(layer(hs[-1], emb) if isinstance(layer, Block) else layer(hs[-1]))
        h = hs[-1]
        for block in self.mid:
            h = block(h, emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, Block) else layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))
