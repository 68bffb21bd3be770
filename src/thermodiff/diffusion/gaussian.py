"""Gaussian diffusion kernel q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), pi = N(0, I).

P §2.1, Table App.1 and the bound's terms (P eq. 14, App. B). Tables are float64 and indexed by the
paper's step t = 0..T. Every method returns elementwise values (no reduction over dimensions); bound.py
sums them. Reverse steps are GaussianStep or FullGaussianStep (steps.py).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from thermodiff.diffusion.distributions import (
    LOG_2PI,
    normal_entropy,
    normal_kl,
    normal_kl_full,
    normal_log_prob,
)
from thermodiff.diffusion.steps import FullGaussianStep, GaussianStep, PointStep, at


class GaussianKernel:
    """Forward chain, its closed-form marginals and posteriors, and the edge terms of K."""

    name = "gaussian"
    step_types = (GaussianStep, FullGaussianStep)  # the reverse steps kl and sample_from take
    t_first = 2  # the first reverse step is fixed (P App. B.2): learned steps are t = 2..T

    def __init__(self, betas: Tensor):
        self.betas = betas  # (T + 1,) float64, betas[0] = 0; may carry grad (learned schedule)
        log_alphas = torch.log1p(-betas)
        self.log_alpha_bar = torch.cumsum(log_alphas, 0)
        # 1 - alpha_bar via expm1: exact at t = 1 even when beta_1 ~ 1e-6.
        self.one_minus_alpha_bar = -torch.expm1(self.log_alpha_bar)
        self.sqrt_alpha_bar = torch.exp(0.5 * self.log_alpha_bar)

    @functools.cached_property
    def log_betas(self) -> Tensor:
        """(T + 1,) log beta_t: the "large" reverse variance (DDPM §3.2); -inf at t = 0."""
        return torch.log(self.betas)

    @functools.cached_property
    def posterior_log_variance(self) -> Tensor:
        """(T + 1,) log beta~_t = log beta_t + log(1 - alpha_bar_{t-1}) - log(1 - alpha_bar_t) (DDPM eq. 7);
        -inf at t = 1, NaN at t = 0 (no step ends there)."""
        log_omab = torch.log(self.one_minus_alpha_bar)
        return self.log_betas + torch.roll(log_omab, 1) - log_omab

    @functools.cached_property
    def eps_coefficients(self) -> tuple[Tensor, Tensor]:
        """(T + 1,) tables (beta_t / sqrt(1 - alpha_bar_t), sqrt(1 - beta_t)): the mean of DDPM eq. 11 is
        (x_t - first * eps) / second."""
        return self.betas / self.one_minus_alpha_bar.sqrt(), torch.sqrt(1 - self.betas)

    def eps_mean(self, eps: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(1 - beta_t) (DDPM eq. 11)."""
        scale, sqrt_alpha = self.eps_coefficients
        return (x_t - at(scale, t, x_t) * eps) / at(sqrt_alpha, t, x_t)

    @classmethod
    def build(cls, betas: Tensor, p_bar: float = 0.5, learned_first_step: bool = False) -> GaussianKernel:
        """The kernel for a model's settings: pi = N(0, I) has no p_bar, and step 1 is always fixed."""
        return cls(betas)

    @property
    def T(self) -> int:
        """The number of forward steps."""
        return self.betas.numel() - 1

    def to(self, device: torch.device | str) -> GaussianKernel:
        """The kernel with its tables on `device`; itself when they are there already (as Tensor.to)."""
        same = self.betas.device == torch.device(device)
        return self if same else GaussianKernel(self.betas.to(device))

    def noise_like(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal frozen noise eps shaped as x0 (P §2.1)."""
        return torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: reparameterized (frozen noise)."""
        return at(self.sqrt_alpha_bar, t, x0) * x0 + at(self.one_minus_alpha_bar, t, x0).sqrt() * noise

    def q_mean_logvar(self, x0: Tensor, t: Tensor) -> GaussianStep:
        """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (P §2.1)."""
        mean = at(self.sqrt_alpha_bar, t, x0) * x0
        return GaussianStep(mean, torch.log(at(self.one_minus_alpha_bar, t, x0)).expand_as(mean))

    def posterior_coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """(c0, ct): the mean of q(x_{t-1} | x_t, x_0) is c0 x_0 + ct x_t (DDPM eq. 7)."""
        beta = at(self.betas, t, like)
        omab_t = at(self.one_minus_alpha_bar, t, like)
        omab_prev = at(self.one_minus_alpha_bar, t - 1, like)
        sqrt_ab_prev = at(self.sqrt_alpha_bar, t - 1, like)
        return sqrt_ab_prev * beta / omab_t, torch.sqrt(1 - beta) * omab_prev / omab_t

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> GaussianStep:
        """q(x_{t-1} | x_t, x_0) for t >= 2 (P App. B; DDPM eq. 7)."""
        c0, ct = self.posterior_coefficients(t, x0)
        mean = c0 * x0 + ct * x_t
        return GaussianStep(mean, self.posterior_logvar(t, x0).expand_as(mean))

    def posterior_logvar(self, t: Tensor, like: Tensor) -> Tensor:
        """log of the posterior variance beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)."""
        return at(self.posterior_log_variance, t, like)

    def kl(self, q: GaussianStep, p: GaussianStep | FullGaussianStep) -> Tensor:
        """KL(q || p): elementwise for a diagonal p; per example (B, 1) for a full one (P eq. 14)."""
        if isinstance(p, FullGaussianStep):
            return normal_kl_full(q.mean, q.logvar, p.mean, p.scale_tril).unsqueeze(1)
        return normal_kl(q.mean, q.logvar, p.mean, p.logvar)

    def equilibrium_reversal(self, x_t: Tensor, t: Tensor) -> GaussianStep:
        """The reverse step under pi: N(sqrt(1 - beta_t) x_t, beta_t): exact when q(x) = pi (P App. B.2)."""
        beta = at(self.betas, t, x_t)
        mean = torch.sqrt(1 - beta) * x_t
        return GaussianStep(mean, torch.log(beta).expand_as(mean))

    def sample_from(
        self, p: GaussianStep | FullGaussianStep | PointStep, generator: torch.Generator | None = None
    ) -> Tensor:
        """x_{t-1} ~ p: mean + sigma * noise, or mean + L noise for a full covariance (P Table App.1);
        a PointStep's mean, with no noise drawn."""
        mean = p.mean
        if isinstance(p, PointStep):
            return mean
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        if isinstance(p, FullGaussianStep):
            return mean + (p.scale_tril @ noise.unsqueeze(-1)).squeeze(-1)
        return mean + torch.exp(0.5 * p.logvar) * noise

    def prior_sample(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """x_T ~ pi = N(0, I), float64 (P §2.1)."""
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float64)

    def log_prior(self, x: Tensor) -> Tensor:
        """log pi(x) per element, pi = N(0, I)."""
        return normal_log_prob(x, torch.zeros_like(x), torch.zeros_like(x))

    # --- the edge terms of K, exact per example (elementwise, nats) ---
    def prior_term(self, x0: Tensor) -> Tensor:
        """-KL(q(x_T | x_0) || pi): the prior term (0 when alpha_bar_T = 0)."""
        T = torch.full((x0.shape[0],), self.T, device=x0.device, dtype=torch.long)
        q = self.q_mean_logvar(x0, T)
        return -normal_kl(q.mean, q.logvar, torch.zeros_like(q.mean), torch.zeros_like(q.mean))

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
