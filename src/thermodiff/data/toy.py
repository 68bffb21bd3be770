"""Low-dimensional data sets with known densities: the swiss roll (P 3.1.1) and a Gaussian."""

from __future__ import annotations

import math

import torch
from torch import Tensor

SWISS_T_LO, SWISS_T_HI = 1.5 * math.pi, 4.5 * math.pi


def swiss_curve(s: Tensor) -> Tensor:
    """The roll's centre line c(s) = (s cos s, s sin s) / 10, for s in [1.5 pi, 4.5 pi]."""
    return torch.stack([s * torch.cos(s), s * torch.sin(s)], dim=-1) / 10.0


def swiss_roll(n: int, sigma: float, seed: int) -> Tensor:
    """n points: s ~ U(1.5 pi, 4.5 pi), x = c(s) + sigma N(0, I). float64, raw units."""
    g = torch.Generator().manual_seed(seed)
    s = SWISS_T_LO + (SWISS_T_HI - SWISS_T_LO) * torch.rand(n, generator=g, dtype=torch.float64)
    return swiss_curve(s) + sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)


def swiss_roll_log_prob(x: Tensor, sigma: float, chunk: int = 256) -> Tensor:
    """Log-density (nats) of the swiss roll at x (N, 2), raw units:
    log (1/(b-a)) int_a^b N(x; c(s), sigma^2 I) ds by Simpson's rule on a grid where the Gaussian in s
    (width sigma/|c'(s)| >= sigma/1.42) spans >= 8 nodes: within 1e-6 nats even where the roll's ends
    cut the Gaussian off (the trapezoid rule was 6e-4 off there)."""
    speed_max = math.sqrt(1 + SWISS_T_HI**2) / 10
    n_nodes = 2 * int(math.ceil((SWISS_T_HI - SWISS_T_LO) * speed_max * 4 / sigma)) + 1  # odd
    s = torch.linspace(SWISS_T_LO, SWISS_T_HI, n_nodes, dtype=torch.float64)
    h = (SWISS_T_HI - SWISS_T_LO) / (n_nodes - 1)
    w = torch.full_like(s, 2.0)
    w[1::2] = 4.0
    w[[0, -1]] = 1.0
    log_w = torch.log(w * h / 3)
    c = swiss_curve(s)  # (S, 2)
    x = x.to(torch.float64)
    out = []
    for xb in x.split(chunk):
        sq = torch.cdist(xb, c) ** 2  # (b, S)
        out.append(torch.logsumexp(-sq / (2 * sigma**2) + log_w, dim=1))
    log_norm = -math.log(2 * math.pi * sigma**2) - math.log(SWISS_T_HI - SWISS_T_LO)
    return torch.cat(out) + log_norm


def gaussian_data(n: int, seed: int) -> Tensor:
    """A correlated 2-D Gaussian N(m, C), m = (1, -2), C = [[2, 1.2], [1.2, 1]]: a known density."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return GAUSSIAN_MEAN + z @ torch.linalg.cholesky(GAUSSIAN_COV).T


GAUSSIAN_MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
GAUSSIAN_COV = torch.tensor([[2.0, 1.2], [1.2, 1.0]], dtype=torch.float64)


def gaussian_log_prob(x: Tensor) -> Tensor:
    """log N(x; m, C) in nats, raw units."""
    dist = torch.distributions.MultivariateNormal(GAUSSIAN_MEAN, GAUSSIAN_COV)
    return dist.log_prob(x.to(torch.float64))


def swiss_roll_posterior_x0(
    x_t: Tensor, alpha_bar: float, sigma: float, shift: Tensor, scale: float
) -> tuple[Tensor, Tensor]:
    """Exact E[x_0 | x_t] and diagonal Var[x_0 | x_t] for the swiss roll in model space
    (y = (x - shift) * scale) under x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps.
    Given the curve parameter s, x_0 is Gaussian, so the posterior is a mixture over s of Gaussians,
    integrated on a grid fine enough for the width of x_t | s."""
    sig = sigma * scale
    a = math.sqrt(alpha_bar)
    v = alpha_bar * sig**2 + (1 - alpha_bar)  # Var[x_t | s] per dimension
    speed_max = math.sqrt(1 + SWISS_T_HI**2) / 10 * scale * a
    n_nodes = max(2000, int(math.ceil((SWISS_T_HI - SWISS_T_LO) * speed_max * 8 / math.sqrt(v))) + 1)
    s = torch.linspace(SWISS_T_LO, SWISS_T_HI, n_nodes, dtype=torch.float64)
    c = (swiss_curve(s) - shift.to(torch.float64)) * scale  # (S, 2) curve in model space
    k = a * sig**2 / v  # E[x_0 | x_t, s] = c + k (x_t - a c);  Var = sig^2 (1 - a k)
    var_s = sig**2 * (1 - a * k)
    means, variances = [], []
    for xb in x_t.to(torch.float64).split(256):
        w = torch.softmax(-(torch.cdist(xb, a * c) ** 2) / (2 * v), dim=1)  # (b, S); edge weights ~0
        m_s = c[None] + k * (xb[:, None] - a * c[None])  # (b, S, 2)
        mean = (w[..., None] * m_s).sum(1)
        second = (w[..., None] * m_s**2).sum(1) + var_s
        means.append(mean)
        variances.append((second - mean**2).clamp_min(0.0))
    return torch.cat(means), torch.cat(variances)
