"""DDIM (Song, Meng & Ermon 2021): the reverse step q_sigma(x_{t-1} | x_t, x_0) of a non-Markovian forward
process with the same marginals, at the model's prediction of x_0, with sigma_t^2 = eta^2 times the
posterior variance (DDIM eq. 12, 16): eta = 1 is the ancestral step with the posterior variance, eta = 0 is
deterministic and, run backwards, an encoder x_0 -> x_T.

With the eps parameterization the step is DDIM eq. 12 on the network's eps (the model_fn's `eps`). Any
other Gaussian model's x_0 is read off its step through the posterior mean c0 x_0 + ct x_t (DDPM eq. 7),
which for the eps parameterization gives the same eps up to float64 rounding. Below kernel.t_first the
step is the fixed reversal (P App. B.2), read the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermodiff.diffusion.bound import ModelFn
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.steps import FullGaussianStep, GaussianStep, PointStep, at
from thermodiff.errors import ThermodiffError
from thermodiff.model.args import check_callable, check_count, check_finite, check_tensor
from thermodiff.sampling.ancestral import reverse_step


class DDIMStep:
    """DDIM's rule for the sampler (ancestral.StepRule): (kernel, model_fn, x_t, t, step) -> the step
    N(c0' x0_hat + ct' x_t, sigma_t^2) (DDIM eq. 12), a PointStep when eta = 0 (nothing drawn).
    Its posterior_coefficients (c0', ct') let a DataBox read x_0 back.

    The step's mean is linear in x_t and the model's eps (or its mean): the coefficients of each t are
    tabulated once, so a step costs two multiplies and an add beside the network."""

    def __init__(self, kernel: GaussianKernel, eta: float = 0.0):
        if not isinstance(kernel, GaussianKernel):
            raise ThermodiffError(f"DDIM needs a Gaussian kernel, got {kernel.name!r}")
        if not 0.0 <= float(eta) <= 1.0:
            raise ThermodiffError(f"--eta must lie in [0, 1], got {eta}")
        self.kernel, self.eta = kernel, float(eta)
        self._tabulate()

    TABLES = ("logvar", "c0", "ct", "keep", "shift", "x_scale", "eps_scale")

    @torch.no_grad()
    def _tabulate(self) -> None:
        """(T + 1,) tables over t (row 0 NaN: no step ends at t = 0): log sigma_t^2 (DDIM eq. 16); (c0', ct');
        the mean as keep * mean + shift * x_t from the model's mean, and as x_scale * x_t + eps_scale *
        eps from its eps (x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t))."""
        k = self.kernel
        t = torch.arange(1, k.T + 1, device=k.betas.device)
        like = k.betas[1:]  # 1-D: at() gathers without reshaping
        root, root_prev = at(k.sqrt_alpha_bar, t, like), at(k.sqrt_alpha_bar, t - 1, like)  # sqrt(ab)
        omab, omab_prev = at(k.one_minus_alpha_bar, t, like), at(k.one_minus_alpha_bar, t - 1, like)
        var = self.eta**2 * torch.exp(k.posterior_logvar(t, like))
        direction = (omab_prev - var).clamp(min=0).sqrt()  # sqrt(1 - ab_{t-1} - sigma_t^2)
        ct = direction / omab.sqrt()
        c0 = root_prev - ct * root
        post_c0, post_ct = k.posterior_coefficients(t, like)
        keep = c0 / post_c0
        tables = {
            "logvar": torch.log(var),
            "c0": c0,
            "ct": ct,
            "keep": keep,
            "shift": ct - keep * post_ct,
            "x_scale": root_prev / root,
            "eps_scale": direction - root_prev * omab.sqrt() / root,
        }
        nan = like.new_full((1,), float("nan"))
        for name in self.TABLES:
            setattr(self, name, torch.cat([nan, tables[name].detach()]))

    def to(self, device: torch.device | str) -> DDIMStep:
        """Itself with its kernel and tables on `device`, moved once (as Kernel.to; a DataBox calls it)."""
        if self.keep.device != torch.device(device):
            self.kernel = self.kernel.to(device)
            for name in self.TABLES:
                setattr(self, name, getattr(self, name).to(device))
        return self

    def posterior_coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """(c0', ct'): the step's mean is c0' x_0 + ct' x_t (DDIM eq. 12 with eps = (x_t - sqrt(ab_t) x_0)
        / sqrt(1 - ab_t)): c0' = sqrt(ab_{t-1}) - ct' sqrt(ab_t), ct' = sqrt((1 - ab_{t-1} - sigma_t^2)
        / (1 - ab_t))."""
        self.to(like.device)
        return at(self.c0, t, like), at(self.ct, t, like)

    def x0(self, p: GaussianStep | FullGaussianStep, x_t: Tensor, t: Tensor) -> Tensor:
        """The x_0 a step predicts: its mean read through q(x_{t-1} | x_t, x_0)'s mean c0 x_0 + ct x_t."""
        c0, ct = self.kernel.to(x_t.device).posterior_coefficients(t, x_t)
        return (p.mean - ct * x_t) / c0

    def __call__(
        self, kernel: GaussianKernel, model_fn: ModelFn, x_t: Tensor, t: Tensor, step: int
    ) -> GaussianStep | PointStep:
        """The step t -> t - 1 (`step`: t's value): from the network's eps when model_fn has one, else
        from the model's step (reverse_step: below t_first the fixed reversal)."""
        eps = getattr(model_fn, "eps", None)
        if eps is None or step < kernel.t_first:
            return self.from_step(reverse_step(kernel, model_fn, x_t, t, step), x_t, t)
        self.to(x_t.device)
        return self._step(
            torch.addcmul(at(self.x_scale, t, x_t) * x_t, at(self.eps_scale, t, x_t), eps(x_t, t)), t
        )

    def from_step(
        self, p: GaussianStep | FullGaussianStep, x_t: Tensor, t: Tensor
    ) -> GaussianStep | PointStep:
        """DDIM's step at the x_0 that the model's step p predicts."""
        self.to(x_t.device)
        return self._step(torch.addcmul(at(self.shift, t, x_t) * x_t, at(self.keep, t, x_t), p.mean), t)

    def _step(self, mean: Tensor, t: Tensor) -> GaussianStep | PointStep:
        """N(mean, sigma_t^2), or the point at mean when eta = 0."""
        if self.eta == 0:
            return PointStep(mean)
        return GaussianStep(mean, at(self.logvar, t, mean).expand_as(mean))


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
            out = ddim(k, model_fn, x, t, step).mean
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
