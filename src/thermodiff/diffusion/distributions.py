"""Pure distribution functions, elementwise, in nats (improved-diffusion's `losses.py` style)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, in nats (P App. B)."""
    return 0.5 * (
        logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0
    )


def normal_kl_full(mean_q: Tensor, logvar_q: Tensor, mean_p: Tensor, scale_tril_p: Tensor) -> Tensor:
    """KL(N(mean_q, diag e^logvar_q) || N(mean_p, L L^T)) per example (B,), nats; L lower-triangular
    (B, d, d). 0.5 [tr(S^-1 V) + m^T S^-1 m - d + log det S - log det V]."""
    diff = (mean_p - mean_q).unsqueeze(-1)
    std_q = torch.diag_embed(torch.exp(0.5 * logvar_q))
    solved = torch.linalg.solve_triangular(scale_tril_p, torch.cat([std_q, diff], dim=-1), upper=False)
    d = mean_q.shape[-1]
    log_det_p = 2 * torch.log(torch.diagonal(scale_tril_p, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * ((solved**2).sum((-2, -1)) - d + log_det_p - logvar_q.sum(-1))


def normal_entropy(logvar: Tensor) -> Tensor:
    """Differential entropy of N(., e^logvar) per element: 0.5 log(2 pi e var), in nats."""
    return 0.5 * (LOG_2PI + 1.0 + logvar)


def normal_log_prob(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(x; mean, e^logvar) per element, in nats."""
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def normal_expected_log_prob(mean_q: Tensor, logvar_q: Tensor, mean_p: Tensor, logvar_p: Tensor) -> Tensor:
    """E_{x ~ N(mean_q, var_q)} log N(x; mean_p, var_p) per element (cross-entropy, negated), nats."""
    return -0.5 * (LOG_2PI + logvar_p + (torch.exp(logvar_q) + (mean_q - mean_p) ** 2) * torch.exp(-logvar_p))


def bernoulli_kl(p: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    """KL(Bern(p) || Bern(q)) per element, in nats; 0 log 0 = 0."""
    p = p.clamp(0.0, 1.0)
    q = q.clamp(eps, 1.0 - eps)
    return torch.xlogy(p, p) - p * torch.log(q) + torch.xlogy(1 - p, 1 - p) - (1 - p) * torch.log1p(-q)


def bernoulli_entropy(p: Tensor) -> Tensor:
    """Entropy of Bern(p) per element, in nats; 0 log 0 = 0."""
    p = p.clamp(0.0, 1.0)
    return -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p))


def bernoulli_log_prob(x: Tensor, p: Tensor, eps: float = 1e-12) -> Tensor:
    """log Bern(x; p) per element for x in {0, 1}, in nats."""
    p = p.clamp(eps, 1.0 - eps)
    return x * torch.log(p) + (1 - x) * torch.log1p(-p)


def approx_standard_normal_cdf(x: Tensor) -> Tensor:
    """Standard normal CDF via erf (exact up to float rounding)."""
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(
    x: Tensor,
    mean: Tensor,
    log_scale: Tensor,
    bin_width: float = 2.0 / 255.0,
    lo: float = -1.0,
    hi: float = 1.0,
) -> Tensor:
    """log P(x) for x on a grid of bins of `bin_width` in [lo, hi], under N(mean, e^{2 log_scale})
    integrated over each bin, the edge bins extending to +-inf (Ho et al. 2020, eq. 13). Nats."""
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    upper = inv_std * (centered + bin_width / 2)
    lower = inv_std * (centered - bin_width / 2)
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_one_minus_cdf_lower = torch.special.log_ndtr(-lower)
    # log(Phi(upper) - Phi(lower)), computed stably on whichever tail is smaller.
    mid = torch.where(
        lower > 0,
        log_one_minus_cdf_lower + torch.log(-torch.expm1(log_ndtr_diff(-upper, -lower))),
        log_cdf_upper + torch.log(-torch.expm1(log_ndtr_diff(lower, upper))),
    )
    half = bin_width / 2
    return torch.where(x < lo + half, log_cdf_upper, torch.where(x > hi - half, log_one_minus_cdf_lower, mid))


def log_ndtr_diff(a: Tensor, b: Tensor) -> Tensor:
    """log Phi(a) - log Phi(b) (helper for differences of CDFs)."""
    return torch.special.log_ndtr(a) - torch.special.log_ndtr(b)
