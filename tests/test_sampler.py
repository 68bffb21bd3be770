"""The ancestral sampler (sample.py) against distributions whose reverse chain is known here:
- Gaussian data: the exact reverse q(x_{t-1}|x_t) is linear-Gaussian, so the law of the samples is
  a variance recursion written out by hand (the chain starts at pi, not at q(x_T));
- data on a few atoms: the Bayes denoiser E[x_0|x_t] is a softmax over the atoms; given through the
  eps and the paper's parameterizations, the chain must put every sample on an atom, with the atoms'
  weights as frequencies.
Float64 throughout; tolerances in standard errors (SE)."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.reverse import EpsReverse, PaperReverse
from thermodiff.diffusion.schedules import log_snr_betas, paper_betas
from thermodiff.diffusion.steps import GaussianStep
from thermodiff.sampling.ancestral import sample

F64 = torch.float64


def test_exact_gaussian_reverse_gives_the_variance_recursion() -> None:
    """x_0 ~ N(0, s^2): q(x_{t-1}|x_t) = N(a_t x_t, w_t) with a_t = sqrt(1-b_t) v_{t-1}/v_t,
    w_t = b_t v_{t-1}/v_t, v_t = abar_t s^2 + 1 - abar_t; the fixed last step is N(sqrt(1-b_1) x_1, b_1).
    Started at x_T ~ N(0, 1), the samples have variance V_0 from V_{t-1} = a_t^2 V_t + w_t; checked
    within 4 SE (chi-square) on 200k samples, for a narrow and a wide dimension."""
    T, s = 30, torch.tensor([0.3, 1.8], dtype=F64)
    betas = paper_betas(T, 1e-3)
    ab = torch.cumprod(1 - betas, 0)
    v = ab[:, None] * s**2 + 1 - ab[:, None]  # (T + 1, 2)

    def exact(x: torch.Tensor, t: torch.Tensor) -> GaussianStep:
        b = betas[t][:, None]
        return GaussianStep(torch.sqrt(1 - b) * v[t - 1] / v[t] * x, torch.log(b * v[t - 1] / v[t]))

    var = torch.ones(2, dtype=F64)
    for t in range(T, 1, -1):
        var = (1 - betas[t]) * (v[t - 1] / v[t]) ** 2 * var + betas[t] * v[t - 1] / v[t]
    var = (1 - betas[1]) * var + betas[1]
    assert torch.allclose(var, s**2, rtol=0.05)  # the start's mismatch nearly washes out at T = 30

    n = 200_000
    x = sample(GaussianKernel(betas), exact, (2,), n, torch.Generator().manual_seed(0))
    got = x.var(0)
    assert abs(x.mean(0)).max() < 4 * torch.sqrt(var / n).max()
    assert torch.all(abs(got - var) < 4 * var * math.sqrt(2 / (n - 1))), (got, var)


ATOMS = torch.tensor([-1.5, 0.2, 1.0], dtype=F64)
WEIGHTS = torch.tensor([0.2, 0.5, 0.3], dtype=F64)


def bayes_x0(kernel: GaussianKernel, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """E[x_0 | x_t] for x_0 on ATOMS with WEIGHTS: q(x_t | a) = N(sqrt(abar_t) a, 1 - abar_t)."""
    ab = torch.exp(kernel.log_alpha_bar[t])[:, None, None]
    d = x[:, :, None] - ab.sqrt() * ATOMS
    logw = torch.log(WEIGHTS) - d**2 / (2 * (1 - ab))
    return (torch.softmax(logw, -1) * ATOMS).sum(-1)


def eps_oracle(kernel: GaussianKernel, scale: float = 1.0):
    """A Bayes-optimal eps network through EpsReverse, with the posterior variance:
    eps = (x_t - sqrt(abar_t) E[x_0|x_t]) / sqrt(1 - abar_t), times `scale` (for the control)."""
    rev = EpsReverse("small")

    def fn(x: torch.Tensor, t: torch.Tensor) -> GaussianStep:
        ab = torch.exp(kernel.log_alpha_bar[t])[:, None]
        eps = (x - ab.sqrt() * bayes_x0(kernel, x, t)) / (1 - ab).sqrt()
        return rev.p_params(kernel, scale * eps, x, t)

    return fn


def paper_oracle(kernel: GaussianKernel):
    """Raw (z_mu, z_Sigma) of the paper's map (P eqs. 64-65) solved for the posterior mean at
    E[x_0|x_t] and the posterior variance: Sigma = v, z_mu = (m - (1 - v) x_t) / v."""
    rev = PaperReverse()

    def fn(x: torch.Tensor, t: torch.Tensor) -> GaussianStep:
        c0, ct = kernel.posterior_coefficients(t, x)
        m = c0 * bayes_x0(kernel, x, t) + ct * x
        var = torch.exp(kernel.posterior_logvar(t, x)).expand_as(x)
        beta = kernel.betas[t][:, None]
        z_sigma = torch.logit(var) - torch.logit(beta)
        z_mu = (m - (1 - var) * x) / var
        return rev.p_params(kernel, torch.cat([z_mu, z_sigma], 1), x, t)

    return fn


def on_atoms(x: torch.Tensor, tol: float) -> tuple[torch.Tensor, float]:
    """(counts of samples per atom, fraction within tol of their nearest atom)."""
    d = (x.reshape(-1, 1) - ATOMS).abs()
    near = d.argmin(1)
    return torch.bincount(near, minlength=3).to(F64), (d.min(1).values < tol).to(F64).mean().item()


@pytest.mark.parametrize("oracle", [eps_oracle, paper_oracle])
@pytest.mark.parametrize("schedule", ["log_snr", "paper"])
def test_bayes_denoiser_samples_the_atoms_with_their_weights(oracle, schedule: str) -> None:
    """20k samples: 99.5% lie within 5 sqrt(beta_1) of an atom (the fixed last step's own noise is
    sqrt(beta_1)), and each atom's share matches its weight within 4 binomial SE."""
    T, b1 = 200, 1e-4
    k = GaussianKernel(log_snr_betas(T, b1) if schedule == "log_snr" else paper_betas(T, b1))
    n = 20_000
    x = sample(k, oracle(k), (1,), n, torch.Generator().manual_seed(1))
    counts, near = on_atoms(x, 5 * math.sqrt(b1))
    assert near > 0.995, near
    share = counts / n
    assert torch.all(abs(share - WEIGHTS) < 4 * torch.sqrt(WEIGHTS * (1 - WEIGHTS) / n)), share


def test_a_wrong_denoiser_is_detected() -> None:
    """Control for the test above: eps under-predicted by 10% still ends on the atoms (later steps
    correct it) but with the wrong shares (0.23 / 0.46 / 0.31 here), far outside 4 SE."""
    T, b1, n = 200, 1e-4, 20_000
    k = GaussianKernel(log_snr_betas(T, b1))
    x = sample(k, eps_oracle(k, scale=0.9), (1,), n, torch.Generator().manual_seed(1))
    counts, near = on_atoms(x, 5 * math.sqrt(b1))
    assert near > 0.995
    assert torch.any(abs(counts / n - WEIGHTS) > 8 * torch.sqrt(WEIGHTS * (1 - WEIGHTS) / n))
