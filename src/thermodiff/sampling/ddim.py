"""DDIM (Song, Meng & Ermon 2021): the reverse step q_sigma(x_{t-1} | x_t, x_0) of a non-Markovian forward
process with the same marginals, at the model's prediction of x_0, with sigma_t^2 = eta^2 times the
posterior variance (DDIM eq. 12, 16): eta = 1 is the ancestral step with the posterior variance, eta = 0 is
deterministic and, run backwards, an encoder x_0 -> x_T.

The prediction of x_0 (and of the noise eps) is read off the model's Gaussian step through the posterior
mean c0 x_0 + ct x_t (DDPM eq. 7): for the eps parameterization that is the network's eps exactly (up to
float64 rounding). Below kernel.t_first the step is the fixed reversal (P App. B.2), whose mean is taken.
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermodiff.diffusion.bound import ModelFn
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.steps import FullGaussianStep, GaussianStep, at
from thermodiff.errors import ThermodiffError
from thermodiff.model.args import check_callable, check_count, check_finite, check_tensor
from thermodiff.sampling.ancestral import reverse_step


class DDIMStep:
    """(model step, x_t, t) -> N(c0' x0_hat + ct' x_t, sigma_t^2): DDIM's step (DDIM eq. 12), a `transform`
    of the ancestral sampler. Its posterior_coefficients (c0', ct') let a DataBox read x_0 back."""

    def __init__(self, kernel: GaussianKernel, eta: float = 0.0):
        if not isinstance(kernel, GaussianKernel):
            raise ThermodiffError(f"DDIM needs a Gaussian kernel, got {kernel.name!r}")
        if not 0.0 <= float(eta) <= 1.0:
            raise ThermodiffError(f"--eta must lie in [0, 1], got {eta}")
        self.kernel, self.eta = kernel, float(eta)

    def variance(self, t: Tensor, like: Tensor) -> Tensor:
        """sigma_t^2 = eta^2 beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (DDIM eq. 16)."""
        return self.eta**2 * torch.exp(self.kernel.posterior_logvar(t, like))

    def posterior_coefficients(
        self, t: Tensor, like: Tensor, variance: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(c0', ct'): the step's mean is c0' x_0 + ct' x_t (DDIM eq. 12 with eps = (x_t - sqrt(ab_t) x_0)
        / sqrt(1 - ab_t)); `variance`: sigma_t^2 when the caller has it."""
        k = self.kernel
        variance = self.variance(t, like) if variance is None else variance
        rest = (at(k.one_minus_alpha_bar, t - 1, like) - variance).clamp(min=0)
        ct = rest.sqrt() / at(k.one_minus_alpha_bar, t, like).sqrt()
        return at(k.sqrt_alpha_bar, t - 1, like) - ct * at(k.sqrt_alpha_bar, t, like), ct

    def x0(self, p: GaussianStep | FullGaussianStep, x_t: Tensor, t: Tensor) -> Tensor:
        """The x_0 a step predicts: its mean read through q(x_{t-1} | x_t, x_0)'s mean c0 x_0 + ct x_t."""
        c0, ct = self.kernel.posterior_coefficients(t, x_t)
        return (p.mean - ct * x_t) / c0

    def __call__(self, p: GaussianStep | FullGaussianStep, x_t: Tensor, t: Tensor) -> GaussianStep:
        self.kernel = self.kernel.to(x_t.device)
        variance = self.variance(t, x_t)
        c0, ct = self.posterior_coefficients(t, x_t, variance)
        mean = c0 * self.x0(p, x_t, t) + ct * x_t
        return GaussianStep(mean, torch.log(variance).expand_as(mean))


@torch.no_grad()
def ddim_encode(
    kernel: GaussianKernel,
    model_fn: ModelFn,
    x0: Tensor,
    t_end: int | None = None,
    iterations: int = 50,
    tol: float = 1e-11,
) -> Tensor:
    """x_{t_end} (default x_T) whose deterministic DDIM chain (eta = 0) returns x0: each step t = 1..t_end
    solved for x_t by the iteration x <- x + (x_{t-1} - D_t(x)) / r, r first sqrt(ab_{t-1} / ab_t) (the
    step's slope at fixed eps), then a secant slope per example, from the usual DDIM inversion as the
    first guess (eps at x_{t-1}).
    Stops when the residual is below tol (relative) or after `iterations` network passes per step."""
    if not isinstance(kernel, GaussianKernel):
        raise ThermodiffError(f"DDIM encoding needs a Gaussian kernel, got {type(kernel).__name__}")
    check_callable("model_fn", model_fn)
    x0 = check_tensor("x0", x0)
    t_end = kernel.T if t_end is None else check_count("t_end", t_end, 1, kernel.T)
    check_count("iterations", iterations, 1, 10**6)
    ddim = DDIMStep(kernel.to(x0.device), 0.0)
    k = ddim.kernel
    x = x0.to(torch.float64)
    for step in range(1, t_end + 1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        target = x
        if step >= k.t_first:  # first guess: eps read at x_{t-1} (Song et al. 2021 §4.3's encoder)
            guess = ddim.x0(reverse_step(k, model_fn, x, t, step), x, t)
            eps = (x - at(k.sqrt_alpha_bar, t - 1, x) * guess) / at(k.one_minus_alpha_bar, t - 1, x).sqrt()
            x = at(k.sqrt_alpha_bar, t, x) * guess + at(k.one_minus_alpha_bar, t, x).sqrt() * eps
        slope = at(k.sqrt_alpha_bar, t - 1, x) / at(k.sqrt_alpha_bar, t, x)  # (B, 1, ...)
        scale, last = 1.0 + float(target.abs().max()), None
        for _ in range(iterations):
            out = ddim(reverse_step(k, model_fn, x, t, step), x, t).mean
            residual = target - out
            if float(residual.abs().max()) <= tol * scale:
                break
            if last is not None:  # secant slope per example (Barzilai-Borwein), kept where it is sane
                dx, dy = (x - last[0]).flatten(1), (out - last[1]).flatten(1)
                secant = (dx * dy).sum(1) / (dx * dx).sum(1)
                ok = torch.isfinite(secant) & (secant > 0)
                slope = torch.where(ok.reshape(slope.shape), secant.reshape(slope.shape), slope)
            last = (x, out)
            x = x + residual / slope
    return check_finite(f"DDIM encoding to t = {t_end}", x)
