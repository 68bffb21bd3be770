"""Networks for vector data (B, d): the paper's RBF net (swiss roll), its per-step MLP (heartbeat),
and an MLP with a time embedding. Each maps (x_t, t) -> raw (B, n_out)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from thermodiff.nets.time import PerStepReadout, sinusoidal_embedding


class RBFNet(nn.Module):
    """Normalized radial basis function layer shared over t, affine readout per step (P D.1.1)."""

    def __init__(self, d: int, T: int, n_out: int, units: int = 16, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.centres = nn.Parameter(2.0 * torch.rand(units, d, generator=g) - 1.0)
        self.log_width = nn.Parameter(torch.full((units,), math.log(0.5)))
        self.readout = PerStepReadout(T, units, n_out)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        sq = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1)  # (B, units)
        h = torch.softmax(-sq * torch.exp(-2 * self.log_width) / 2, dim=1)
        return self.readout(h, t)


class PerStepMLP(nn.Module):
    """Hidden layers of sigmoid units shared over t, a readout per step (P D.1.2, the heartbeat)."""

    def __init__(self, d: int, T: int, n_out: int, hidden: int = 50, layers: int = 3):
        super().__init__()
        dims = [d] + [hidden] * layers
        self.trunk = nn.Sequential(
            *[m for a, b in zip(dims[:-1], dims[1:], strict=True) for m in (nn.Linear(a, b), nn.Sigmoid())]
        )
        self.readout = PerStepReadout(T, hidden, n_out)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.readout(self.trunk(x), t)


class MLP(nn.Module):
    """Residual MLP; sinusoidal time embedding added in every block; optional Fourier features of x
    (Tancik et al. 2020) so that thin structures (a swiss roll of width 0.003) are resolvable."""

    def __init__(
        self,
        d: int,
        T: int,
        n_out: int,
        hidden: int = 128,
        layers: int = 3,
        time_embed: int = 64,
        fourier: int = 0,
        fourier_scale: float = 8.0,
        seed: int = 0,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", fourier_scale * torch.randn(d, fourier, generator=g))
        self.time_embed, self.T = time_embed, T
        n_in = d + 2 * fourier
        self.inp = nn.Linear(n_in, hidden)
        self.temb = nn.Sequential(nn.Linear(time_embed, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"t": nn.Linear(hidden, hidden), "f": nn.Linear(hidden, hidden)})
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, n_out)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        feats = [x]
        if self.freqs.shape[1]:
            proj = 2 * math.pi * x @ self.freqs
            feats += [torch.sin(proj), torch.cos(proj)]
        h = self.inp(torch.cat(feats, dim=1))
        for shift, block, norm in zip(self.time_shifts(t), self.blocks, self.norms, strict=True):
            h = h + block["f"](nn.functional.silu(norm(h) + shift))
        return self.out(nn.functional.silu(h))

    def time_shifts(self, t: Tensor) -> list[Tensor]:
        """Each block's shift block["t"](temb(t)), (B, hidden): a function of t alone, so a batch with
        more examples than steps computes it once per step 0..T and gathers its rows (the same values;
        over half of the network's multiply-adds at hidden = 256, 4 layers)."""
        table = not t.is_floating_point() and t.shape[0] > self.T + 1
        steps = torch.arange(self.T + 1, device=t.device) if table else t
        emb = self.temb(sinusoidal_embedding(steps, self.time_embed))
        shifts = [block["t"](emb) for block in self.blocks]
        return [s[t] for s in shifts] if table else shifts
