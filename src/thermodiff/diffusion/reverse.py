"""Raw network output -> the reverse step p(x_{t-1} | x_t) (P Table App.1, App. D; DDPM; iDDPM).

The one place raw output is interpreted: each parameterization returns the step type it declares in
`step_type` (steps.py). The network's raw output has `out_factor` times the data's channels, split along
dim 1 (and, for a full covariance of vector data, d(d-1)/2 more entries).
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.respace import RespacedBinomialKernel
from thermodiff.diffusion.steps import BernoulliStep, FullGaussianStep, GaussianStep, Step, at


class Reverse:
    """A reverse parameterization: raw network output -> a step of type `step_type` (P Table App.1)."""

    out_factor = 1
    step_type: type[Step]

    def out_channels(self, shape: tuple[int, ...]) -> int:
        """Raw outputs along dim 1 for data of `shape` (without batch)."""
        return self.out_factor * shape[0]

    def p_params(self, kernel, raw: Tensor, x_t: Tensor, t: Tensor) -> Step:
        """p(x_{t-1} | x_t) from the network's raw output at (x_t, t)."""
        raise NotImplementedError


class PaperReverse(Reverse):
    """Sigma = sigmoid(z_Sigma + logit beta_t); mu = (x_t - z_mu)(1 - Sigma) + z_mu (P eqs. 64-65)."""

    out_factor = 2
    step_type = GaussianStep

    def p_params(self, kernel: GaussianKernel, raw: Tensor, x_t: Tensor, t: Tensor) -> GaussianStep:
        z_mu, z_sigma = raw.to(x_t.dtype).chunk(2, dim=1)
        beta = at(kernel.betas, t, x_t)
        logit_beta = torch.log(beta) - torch.log1p(-beta)
        logvar = torch.nn.functional.logsigmoid(z_sigma + logit_beta)
        one_minus_var = torch.sigmoid(-(z_sigma + logit_beta))
        mean = (x_t - z_mu) * one_minus_var + z_mu
        return GaussianStep(mean, logvar)


class EpsReverse(Reverse):
    """mu from predicted noise (DDPM eq. 11); variance posterior ("small"), beta_t ("large"),
    or interpolated in log space between them by a second output ("learned_range", iDDPM eq. 15);
    "full": learned-range diagonal plus a lower triangle, a full covariance for vector data."""

    def __init__(self, variance: str = "small"):
        self.variance = variance
        self.out_factor = 2 if variance in ("learned_range", "full") else 1
        self.step_type = FullGaussianStep if variance == "full" else GaussianStep

    def out_channels(self, shape: tuple[int, ...]) -> int:
        if self.variance != "full":
            return super().out_channels(shape)
        if len(shape) != 1:
            raise ValueError("diffusion.variance = 'full' needs vector data (one dimension)")
        return 2 * shape[0] + shape[0] * (shape[0] - 1) // 2

    def eps(self, raw: Tensor, x_t: Tensor) -> Tensor:
        """The predicted noise eps_theta(x_t, t): the raw output's first entries along dim 1, in x_t's
        dtype (what DDIM's step reads, DDIM eq. 12)."""
        return raw[:, : x_t.shape[1]].to(x_t.dtype)

    def p_params(
        self, kernel: GaussianKernel, raw: Tensor, x_t: Tensor, t: Tensor
    ) -> GaussianStep | FullGaussianStep:
        """mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(1 - beta_t) (DDPM eq. 11)."""
        raw = raw.to(x_t.dtype)
        if self.variance == "full":
            return self._full(kernel, raw, x_t, t)
        eps, v = raw.chunk(2, dim=1) if self.out_factor == 2 else (raw, None)
        mean = kernel.eps_mean(eps, x_t, t)
        if self.variance == "small":
            return GaussianStep(mean, kernel.posterior_logvar(t, x_t).expand_as(mean))
        if self.variance == "large":
            return GaussianStep(mean, at(kernel.log_betas, t, x_t).expand_as(mean))
        return GaussianStep(mean, learned_range(kernel, v, x_t, t))

    def _full(self, kernel: GaussianKernel, raw: Tensor, x_t: Tensor, t: Tensor) -> FullGaussianStep:
        """N(mean, L L^T): Sigma = L L^T, diag(L)^2 learned-range, below it sqrt(beta_t) * raw."""
        d = x_t.shape[1]
        eps, v, off = raw.split([d, d, d * (d - 1) // 2], dim=1)
        mean = kernel.eps_mean(eps, x_t, t)
        logvar = learned_range(kernel, v, x_t, t)
        rows, cols = torch.tril_indices(d, d, offset=-1, device=x_t.device)
        lower = x_t.new_zeros(x_t.shape[0], d, d)
        lower[:, rows, cols] = off * at(kernel.betas, t, x_t).sqrt()
        return FullGaussianStep(mean, torch.diag_embed(torch.exp(0.5 * logvar)) + lower)


def learned_range(kernel: GaussianKernel, v: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
    """log variance frac log beta_t + (1 - frac) log beta~_t, frac = (v + 1) / 2 (iDDPM eq. 15)."""
    small, large = kernel.posterior_logvar(t, x_t), at(kernel.log_betas, t, x_t)
    frac = (v + 1) / 2
    return frac * large + (1 - frac) * small


class BernoulliReverse(Reverse):
    """p(x_{t-1} = 1 | x_t) = f_b = sigmoid(raw) (P Table App.1), or with offset = True
    sigmoid(raw + logit r_t(x_t)), r_t the equilibrium reversal of step t: an offset in logit space as
    P eq. 65 offsets the variance by logit beta_t. Then raw = 0 (a zero-initialised readout) is the
    reversal itself, K - L_null = 0, instead of a coin flip that costs log 2 per bit and step."""

    out_factor = 1
    step_type = BernoulliStep

    def __init__(self, offset: bool = False):
        self.offset = offset

    def p_params(self, kernel: BinomialKernel, raw: Tensor, x_t: Tensor, t: Tensor) -> BernoulliStep:
        """logit P(x_{t-1} = 1 | x_t) = raw, or raw + logit r_t(x_t) with the offset (P Table App.1)."""
        logit = raw.to(x_t.dtype)
        if isinstance(kernel, RespacedBinomialKernel):  # the step the network knows, then the composed one
            source = kernel.source
            s = kernel.timesteps[t]
            if self.offset:
                logit = source.equilibrium_reversal(x_t, s).logit + logit
            return BernoulliStep(kernel.reread(logit, x_t, t))
        if self.offset:
            return BernoulliStep(kernel.equilibrium_reversal(x_t, t).logit + logit)
        return BernoulliStep(logit)


# (kernel, config name) -> builder(variance): the registry of reverse parameterizations, whose names are
# the config's choices; binomial "bernoulli" is older runs' name for "paper" (accepted, not offered)
PARAMETERIZATIONS = {
    ("gaussian", "paper"): lambda variance: PaperReverse(),
    ("gaussian", "eps"): EpsReverse,
    ("binomial", "paper"): lambda variance: BernoulliReverse(),
    ("binomial", "offset"): lambda variance: BernoulliReverse(offset=True),
    ("binomial", "bernoulli"): lambda variance: BernoulliReverse(),
}
LEGACY_NAMES = ("bernoulli",)


def make_reverse(kernel: str, parameterization: str, variance: str = "learned") -> Reverse:
    """(kernel, config name) -> reverse parameterization (PARAMETERIZATIONS)."""
    if parameterization == "eps" and variance == "learned":  # the config default
        variance = "learned_range"
    return PARAMETERIZATIONS[kernel, parameterization](variance)
