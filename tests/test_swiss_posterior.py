"""The exact swiss-roll posterior E[x_0|x_t], Var[x_0|x_t] (the oracle reverse chain) and the full
reverse covariance, against the law of total expectation/variance and torch.distributions."""

import math

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from thermodiff.config import DataConfig
from thermodiff.data import load_dataset
from thermodiff.data.toy import swiss_roll_posterior_x0
from thermodiff.diffusion.distributions import normal_kl_full
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.reverse import EpsReverse
from thermodiff.diffusion.schedules import log_snr_betas


def test_normal_kl_full_matches_torch_distributions():
    """Closed form vs torch.distributions' KL for random full covariances: float64 rounding only."""
    g = torch.Generator().manual_seed(0)
    B, d = 6, 3
    mq, lq, mp = (torch.randn(B, d, generator=g, dtype=torch.float64) for _ in range(3))
    L = torch.tril(torch.randn(B, d, d, generator=g, dtype=torch.float64))
    L.diagonal(dim1=1, dim2=2).copy_(torch.rand(B, d, generator=g, dtype=torch.float64) + 0.5)
    ref = kl_divergence(
        MultivariateNormal(mq, torch.diag_embed(lq.exp())), MultivariateNormal(mp, scale_tril=L)
    )
    assert torch.allclose(normal_kl_full(mq, lq, mp, L), ref, atol=1e-12)


def test_swiss_posterior_obeys_total_expectation_and_variance():
    """Draw (x_0, x_t) from the data and the forward kernel: E[x_0 - m(x_t)] = 0 and
    E[(x_0 - m(x_t))^2] = E[Var(x_0|x_t)] (tower property). 20k pairs: 5 standard errors."""
    ds = load_dataset(DataConfig(sigma=0.05, n_train=20_000, n_test=20_000))
    shift, scale = torch.tensor(ds.scaling.shift), ds.scaling.scale
    g = torch.Generator().manual_seed(1)
    for alpha_bar in (0.99, 0.7, 0.2):
        x0 = ds.test
        x_t = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * torch.randn(
            x0.shape, generator=g, dtype=torch.float64
        )
        mean, var = swiss_roll_posterior_x0(x_t, alpha_bar, 0.05, shift, scale)
        err = x0 - mean
        n = x0.shape[0]
        assert (err.mean(0).abs() < 5 * err.std(0) / math.sqrt(n)).all()
        sq = err**2 - var
        assert (sq.mean(0).abs() < 5 * sq.std(0) / math.sqrt(n)).all()


def test_full_covariance_reverse_sampling_has_its_covariance():
    """x ~ p(x_{t-1}|x_t) with variance = full: the sample covariance is L L^T (50k draws, 3%)."""
    kernel = GaussianKernel(log_snr_betas(20, 1e-4))
    rev = EpsReverse("full")
    assert rev.out_channels((2,)) == 5
    n = 50_000
    raw = torch.tensor([[0.1, -0.2, 0.3, -0.5, 2.0]], dtype=torch.float64).expand(n, 5)
    x_t = torch.zeros(n, 2, dtype=torch.float64)
    t = torch.full((n,), 10)
    step = rev.p_params(kernel, raw, x_t, t)
    mean, L = step.mean, step.scale_tril
    x = kernel.sample_from(step, torch.Generator().manual_seed(2))
    cov = torch.cov((x - mean).T)
    target = L[0] @ L[0].T
    assert torch.allclose(cov, target, rtol=0.03, atol=0.03 * target.diagonal().min().item())
