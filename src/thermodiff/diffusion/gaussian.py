"""Gaussian diffusion kernel q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), pi = N(0, I).

PAPER.md 1.1 and 1.4. Tables are float64 and indexed by the paper's step t = 0..T. Every method
returns elementwise values (no reduction over dimensions); bound.py sums them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermodiff.diffusion.distributions import (
    LOG_2PI,
    normal_entropy,
    normal_kl,
    normal_kl_full,
    normal_log_prob,
)

Params = tuple[Tensor, Tensor]  # (mean, logvar)


def is_full(p: Params) -> bool:
    """Whether reverse parameters are (mean, scale_tril) rather than (mean, logvar)."""
    return p[1].dim() == p[0].dim() + 1


def _at(table: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """table[t] reshaped to broadcast against a batch `like` of shape (B, ...)."""
    return table[t].reshape(-1, *([1] * (like.dim() - 1)))


class GaussianKernel:
    """Forward chain, its closed-form marginals and posteriors, and the edge terms of K."""

    name = "gaussian"
    t_first = 2  # the first reverse step is fixed (P App. B.2): learned steps are t = 2..T

    def __init__(self, betas: Tensor):
        self.betas = betas  # (T + 1,) float64, betas[0] = 0; may carry grad (learned schedule)
        log_alphas = torch.log1p(-betas)
        self.log_alpha_bar = torch.cumsum(log_alphas, 0)
        # 1 - alpha_bar via expm1: exact at t = 1 even when beta_1 ~ 1e-6.
        self.one_minus_alpha_bar = -torch.expm1(self.log_alpha_bar)
        self.sqrt_alpha_bar = torch.exp(0.5 * self.log_alpha_bar)

    @property
    def T(self) -> int:
        return self.betas.numel() - 1

    def to(self, device: torch.device | str) -> GaussianKernel:
        """The kernel with its tables on `device`; itself when they are there already (as Tensor.to)."""
        same = self.betas.device == torch.device(device)
        return self if same else GaussianKernel(self.betas.to(device))

    def noise_like(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: reparameterized (frozen noise)."""
        return _at(self.sqrt_alpha_bar, t, x0) * x0 + _at(self.one_minus_alpha_bar, t, x0).sqrt() * noise

    def q_mean_logvar(self, x0: Tensor, t: Tensor) -> Params:
        """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)."""
        mean = _at(self.sqrt_alpha_bar, t, x0) * x0
        return mean, torch.log(_at(self.one_minus_alpha_bar, t, x0)).expand_as(mean)

    def posterior_coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """(c0, ct): the mean of q(x_{t-1} | x_t, x_0) is c0 x_0 + ct x_t (DDPM eq. 7)."""
        beta = _at(self.betas, t, like)
        omab_t = _at(self.one_minus_alpha_bar, t, like)
        omab_prev = _at(self.one_minus_alpha_bar, t - 1, like)
        sqrt_ab_prev = _at(self.sqrt_alpha_bar, t - 1, like)
        return sqrt_ab_prev * beta / omab_t, torch.sqrt(1 - beta) * omab_prev / omab_t

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Params:
        """q(x_{t-1} | x_t, x_0) for t >= 2 (PAPER.md 1.1; DDPM eq. 7)."""
        c0, ct = self.posterior_coefficients(t, x0)
        mean = c0 * x0 + ct * x_t
        return mean, self.posterior_logvar(t, x0).expand_as(mean)

    def posterior_logvar(self, t: Tensor, like: Tensor) -> Tensor:
        """log of the posterior variance beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)."""
        b = _at(self.betas, t, like)
        return (
            torch.log(b)
            + torch.log(_at(self.one_minus_alpha_bar, t - 1, like))
            - torch.log(_at(self.one_minus_alpha_bar, t, like))
        )

    def kl(self, q: Params, p: Params) -> Tensor:
        """Elementwise KL for a diagonal p; per example (B, 1) for p = (mean, scale_tril)."""
        if is_full(p):
            return normal_kl_full(q[0], q[1], p[0], p[1]).unsqueeze(1)
        return normal_kl(q[0], q[1], p[0], p[1])

    def equilibrium_reversal(self, x_t: Tensor, t: Tensor) -> Params:
        """The reverse step under pi: N(sqrt(1 - beta_t) x_t, beta_t): exact when q(x) = pi (P App. B.2)."""
        beta = _at(self.betas, t, x_t)
        mean = torch.sqrt(1 - beta) * x_t
        return mean, torch.log(beta).expand_as(mean)

    def sample_from(self, p: Params, generator: torch.Generator | None = None) -> Tensor:
        mean, spread = p
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        if is_full(p):
            return mean + (spread @ noise.unsqueeze(-1)).squeeze(-1)
        return mean + torch.exp(0.5 * spread) * noise

    def prior_sample(self, shape: tuple[int, ...], generator=None, device=None) -> Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float64)

    def log_prior(self, x: Tensor) -> Tensor:
        """log pi(x) per element, pi = N(0, I)."""
        return normal_log_prob(x, torch.zeros_like(x), torch.zeros_like(x))

    # --- the edge terms of K, exact per example (elementwise, nats) ---
    def prior_term(self, x0: Tensor) -> Tensor:
        """-KL(q(x_T | x_0) || pi): the prior term (0 when alpha_bar_T = 0)."""
        T = torch.full((x0.shape[0],), self.T, device=x0.device, dtype=torch.long)
        mean, logvar = self.q_mean_logvar(x0, T)
        return -normal_kl(mean, logvar, torch.zeros_like(mean), torch.zeros_like(mean))

    def edge_term(self, x0: Tensor) -> Tensor:
        """E_{q(x_1|x_0)} log p(x_0 | x_1), p(x_0|x_1) = N(sqrt(1-b1) x_1, b1) fixed (P App. B.2)."""
        b1 = self.betas[1]
        return -0.5 * (LOG_2PI + torch.log(b1)) - 0.5 * b1 * x0**2 - 0.5 * (1 - b1)

    def entropy_T(self, x0: Tensor) -> Tensor:
        """H_q(X_T | X_0) per element: 0.5 log(2 pi e (1 - alpha_bar_T))."""
        return normal_entropy(torch.log(self.one_minus_alpha_bar[self.T])).expand_as(x0)

    def entropy_1(self, x0: Tensor) -> Tensor:
        """H_q(X_1 | X_0) per element: 0.5 log(2 pi e beta_1)."""
        return normal_entropy(torch.log(self.betas[1])).expand_as(x0)

    def entropy_prior(self, x0: Tensor) -> Tensor:
        """H_p(X_T) per element: 0.5 log(2 pi e)."""
        return normal_entropy(torch.zeros_like(x0))
