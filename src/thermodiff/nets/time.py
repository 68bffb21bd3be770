"""How time t enters a network: the paper's temporal bump readout, per-step readouts, sinusoids."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Transformer-style embedding of integer steps t (B,) -> (B, dim) (DDPM, Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return nn.functional.pad(emb, (0, dim % 2))


def bump_basis(T: int, J: int) -> Tensor:
    """Normalized Gaussian bumps g_j(t), t = 0..T, centres evenly spaced, width = half the spacing
    as in the reference code (P eq. 62). Shape (T + 1, J); rows sum to 1."""
    centres = torch.linspace(0.0, float(T), J)
    width = 0.5 * (centres[1] - centres[0]) if J > 1 else float(T)
    t = torch.arange(T + 1, dtype=torch.float32)[:, None]
    logits = -((t - centres[None]) ** 2) / (2 * width**2)
    return torch.softmax(logits, dim=1)


class TemporalBumpReadout(nn.Module):
    """z(t) = sum_j y_j g_j(t): contracts J coefficients per output with the bump basis (P eq. 63)."""

    def __init__(self, T: int, J: int = 10):
        super().__init__()
        self.J = J
        self.register_buffer("basis", bump_basis(T, J), persistent=False)

    def forward(self, y: Tensor, t: Tensor) -> Tensor:
        """y: (B, K * J, ...) -> (B, K, ...)."""
        B, KJ = y.shape[:2]
        y = y.reshape(B, KJ // self.J, self.J, *y.shape[2:])
        g = self.basis[t].reshape(B, 1, self.J, *([1] * (y.dim() - 3)))
        return (y * g).sum(2)


class PerStepReadout(nn.Module):
    """A separate affine readout for every time step, on features shared over t (P D.1.1, D.1.2)."""

    def __init__(self, T: int, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(T + 1, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(T + 1, n_out))

    def forward(self, h: Tensor, t: Tensor) -> Tensor:
        """h: (B, n_in) -> (B, n_out). Zero at initialisation: the chain starts at equilibrium."""
        return torch.einsum("bi,bio->bo", h, self.weight[t]) + self.bias[t]
