"""The Gaussian kernel (PAPER.md 1.1, 1.4) against analytic truths: the one-step chain simulated step
by step, Bayes' rule evaluated on a grid, the telescoping product of the paper schedule, Monte Carlo
of the edge term, and the joint Gaussian of one equilibrium step."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.reverse import EpsReverse, PaperReverse
from thermodiff.diffusion.schedules import log_snr_betas, make_schedule, paper_betas
from thermodiff.diffusion.steps import GaussianStep

F64 = torch.float64
EXACT = 1e-12
MC_SIGMAS = 5.0  # seeded Monte Carlo: within 5 standard errors (several checks per test)


def mean_logvar(step: GaussianStep) -> tuple[torch.Tensor, torch.Tensor]:
    return step.mean, step.logvar


def longs(n: int, t: int) -> torch.Tensor:
    return torch.full((n,), t, dtype=torch.long)


def alpha_bar(betas: list[float], t: int) -> float:
    """prod_{s=1..t} (1 - beta_s), by hand."""
    return math.prod(1.0 - b for b in betas[1 : t + 1])


def random_betas(T: int, seed: int, lo: float = 0.01, hi: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    b = lo + (hi - lo) * torch.rand(T, generator=g, dtype=F64)
    return torch.cat([torch.zeros(1, dtype=F64), b])


def grid_moments(log_density: torch.Tensor, grid: torch.Tensor) -> tuple[float, float]:
    """Mean and variance of an unnormalized log-density tabulated on a uniform grid (Riemann sum,
    spectrally accurate for smooth densities that vanish at both ends)."""
    w = torch.exp(log_density - log_density.max())
    w = w / w.sum()
    mean = (w * grid).sum()
    return mean.item(), (w * (grid - mean) ** 2).sum().item()


def log_normal(x: torch.Tensor, mean, var) -> torch.Tensor:
    return -0.5 * torch.log(2 * math.pi * torch.as_tensor(var, dtype=F64)) - (x - mean) ** 2 / (2 * var)


# --- q(x_t | x_0) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["paper", "random"])
def test_marginal_matches_step_by_step_chain(schedule: str) -> None:
    """x_t = sqrt(1-b_t) x_{t-1} + sqrt(b_t) eps, simulated step by step for 100k chains from three
    x_0 values; the sample mean and variance at t = 1, 5, T match q(x_t|x_0). Tolerance 5 standard
    errors: var/n for the mean, sqrt(2/n) var for the variance of a Gaussian sample."""
    T, n = 20, 100_000
    betas = paper_betas(T, 1e-3) if schedule == "paper" else random_betas(T, 3)
    k = GaussianKernel(betas)
    g = torch.Generator().manual_seed(4)
    x0 = torch.tensor([-2.0, 0.5, 1.5], dtype=F64).repeat(n, 1)
    x = x0.clone()
    for t in range(1, T + 1):
        b = betas[t].item()
        x = math.sqrt(1 - b) * x + math.sqrt(b) * torch.randn(x.shape, generator=g, dtype=F64)
        if t in (1, 5, T):
            mean, logvar = mean_logvar(k.q_mean_logvar(x0[:1], longs(1, t)))
            var = torch.exp(logvar[0])
            assert ((x.mean(0) - mean[0]).abs() <= MC_SIGMAS * (var / n).sqrt()).all(), t
            assert ((x.var(0) - var).abs() <= MC_SIGMAS * math.sqrt(2 / n) * var).all(), t
            # and q_sample with the same closed form draws the same law
            xs = k.q_sample(x0, longs(n, t), torch.randn(x0.shape, generator=g, dtype=F64))
            assert ((xs.mean(0) - mean[0]).abs() <= MC_SIGMAS * (var / n).sqrt()).all(), t


def test_marginal_closed_form_by_hand() -> None:
    """q(x_t|x_0) = N(sqrt(abar_t) x_0, 1 - abar_t) with abar_t the product written here."""
    betas = random_betas(12, 5)
    k = GaussianKernel(betas)
    x0 = torch.tensor([[0.7], [-1.3]], dtype=F64)
    for t in range(1, 13):
        ab = alpha_bar(betas.tolist(), t)
        mean, logvar = mean_logvar(k.q_mean_logvar(x0, longs(2, t)))
        assert mean.flatten().tolist() == pytest.approx(
            [math.sqrt(ab) * 0.7, math.sqrt(ab) * -1.3], abs=EXACT
        )
        assert torch.exp(logvar).flatten().tolist() == pytest.approx([1 - ab] * 2, rel=1e-10)


def test_marginal_variance_exact_for_tiny_beta_1() -> None:
    """1 - abar_1 = beta_1 to full relative precision even for beta_1 = 1e-9 (no 1 - (1 - b) rounding)."""
    k = GaussianKernel(paper_betas(10, 1e-9))
    _, logvar = mean_logvar(k.q_mean_logvar(torch.zeros(1, 1, dtype=F64), longs(1, 1)))
    assert math.exp(logvar.item()) == pytest.approx(1e-9, rel=1e-9)


# --- q(x_{t-1} | x_t, x_0) vs Bayes' rule on a grid -----------------------------------------------


@pytest.mark.parametrize("schedule", ["paper", "random"])
@pytest.mark.parametrize("t", [2, 3, 7, 15])
@pytest.mark.parametrize("x0,xt", [(0.7, -0.3), (-2.0, 1.5), (0.0, 0.0)])
def test_posterior_vs_bayes_on_grid(schedule: str, t: int, x0: float, xt: float) -> None:
    """q(x_{t-1}|x_t,x_0) proportional to q(x_{t-1}|x_0) q(x_t|x_{t-1}), both Gaussians written here
    (abar by hand), tabulated on 40k points spanning +-12 posterior standard deviations. The grid
    moments are exact to ~1e-12 relative (Riemann sum of a Gaussian); tolerance 1e-8 relative to the
    posterior variance / standard deviation."""
    T = 15
    betas = paper_betas(T, 1e-3) if schedule == "paper" else random_betas(T, 6)
    bl = betas.tolist()
    ab_prev = alpha_bar(bl, t - 1)
    b = bl[t]
    # The posterior is narrower than the prior factor; its width by hand decides the grid span.
    prec = 1 / (1 - ab_prev) + (1 - b) / b
    centre = (math.sqrt(ab_prev) * x0 / (1 - ab_prev) + math.sqrt(1 - b) * xt / b) / prec
    span = 12 / math.sqrt(prec)
    grid = torch.linspace(centre - span, centre + span, 40_001, dtype=F64)
    logp = log_normal(grid, math.sqrt(ab_prev) * x0, 1 - ab_prev) + log_normal(xt, math.sqrt(1 - b) * grid, b)
    want_mean, want_var = grid_moments(logp, grid)

    k = GaussianKernel(betas)
    mean, logvar = mean_logvar(
        k.q_posterior(torch.tensor([[x0]], dtype=F64), torch.tensor([[xt]], dtype=F64), longs(1, t))
    )
    sd = math.sqrt(want_var)
    assert mean.item() == pytest.approx(want_mean, abs=1e-8 * sd)
    assert math.exp(logvar.item()) == pytest.approx(want_var, rel=1e-8)
    assert math.exp(k.posterior_logvar(longs(1, t), mean).item()) == pytest.approx(want_var, rel=1e-8)


def test_posterior_broadcasts_over_dimensions() -> None:
    """(B, C, H, W) batches with one t per example: each element gets its own example's posterior."""
    k = GaussianKernel(random_betas(10, 7))
    g = torch.Generator().manual_seed(8)
    x0 = torch.randn(3, 2, 4, 4, generator=g, dtype=F64)
    xt = torch.randn(3, 2, 4, 4, generator=g, dtype=F64)
    t = torch.tensor([2, 5, 10])
    mean, logvar = mean_logvar(k.q_posterior(x0, xt, t))
    assert mean.shape == logvar.shape == x0.shape
    for i in range(3):
        m1, lv1 = mean_logvar(k.q_posterior(x0[i : i + 1], xt[i : i + 1], t[i : i + 1]))
        assert torch.equal(mean[i : i + 1], m1) and torch.equal(logvar[i : i + 1], lv1)


def test_eps_reverse_with_true_noise_is_the_posterior() -> None:
    """DDPM eq. 11: with the network returning the true noise eps (x_t = sqrt(abar) x_0 + sqrt(1-abar)
    eps), the eps parameterization's mean is the Bayes posterior mean; "small" variance is the
    posterior variance and "large" is beta_t. Checked against the grid posterior's closed form
    (tested above) at 1e-10."""
    k = GaussianKernel(random_betas(10, 9))
    g = torch.Generator().manual_seed(10)
    x0 = torch.randn(64, 3, generator=g, dtype=F64)
    t = torch.randint(2, 11, (64,), generator=g)
    eps = torch.randn(64, 3, generator=g, dtype=F64)
    xt = k.q_sample(x0, t, eps)
    q_mean, q_logvar = mean_logvar(k.q_posterior(x0, xt, t))
    mean, logvar = mean_logvar(EpsReverse("small").p_params(k, eps, xt, t))
    assert torch.allclose(mean, q_mean, atol=1e-10) and torch.allclose(logvar, q_logvar, atol=1e-10)
    _, logvar_large = mean_logvar(EpsReverse("large").p_params(k, eps, xt, t))
    assert torch.allclose(logvar_large, torch.log(k.betas[t])[:, None].expand(64, 3), atol=EXACT)
    # learned_range: v = -1 gives "small", v = +1 gives "large" (iDDPM eq. 15)
    for v, want in ((-1.0, q_logvar), (1.0, logvar_large)):
        raw = torch.cat([eps, torch.full_like(eps, v)], dim=1)
        assert torch.allclose(EpsReverse("learned_range").p_params(k, raw, xt, t).logvar, want, atol=1e-10)


def test_paper_reverse_zero_output() -> None:
    """P eqs. 64-65 with z_Sigma = 0: Sigma = sigmoid(logit beta_t) = beta_t and
    mu = (x_t - z_mu)(1 - beta_t) + z_mu."""
    k = GaussianKernel(random_betas(10, 11))
    g = torch.Generator().manual_seed(12)
    xt = torch.randn(8, 2, generator=g, dtype=F64)
    z_mu = torch.randn(8, 2, generator=g, dtype=F64)
    t = torch.arange(2, 10)
    mean, logvar = mean_logvar(
        PaperReverse().p_params(k, torch.cat([z_mu, torch.zeros_like(z_mu)], 1), xt, t)
    )
    beta = k.betas[t][:, None]
    assert torch.allclose(torch.exp(logvar), beta.expand(8, 2), rtol=1e-12)
    assert torch.allclose(mean, (xt - z_mu) * (1 - beta) + z_mu, atol=EXACT)


# --- reaching the prior ------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [10, 100, 1000, 10_000])
def test_paper_schedule_alpha_bar_T_is_one_over_T(T: int) -> None:
    """prod_{t=2..T} (1 - 1/(T-t+2)) = prod_{k=2..T} (k-1)/k = 1/T telescopes, so
    abar_T = (1 - beta_1)/T exactly; float64 over 10k factors: 1e-10 relative."""
    betas = paper_betas(T, 1e-3)
    assert betas[0].item() == 0.0 and betas[1].item() == 1e-3
    t = torch.arange(2, T + 1, dtype=F64)
    assert torch.equal(betas[2:], 1.0 / (T - t + 2))
    assert betas[T].item() == 0.5
    k = GaussianKernel(betas)
    assert math.exp(k.log_alpha_bar[T].item()) == pytest.approx((1 - 1e-3) / T, rel=1e-10)


def test_log_snr_schedule_is_linear_in_log_snr() -> None:
    """log(abar_t / (1 - abar_t)) runs linearly from log((1 - b1)/b1) at t = 1 to log(abar_T/(1 - abar_T))
    at t = T (VDM); float64 throughout, so the residual from the line is rounding (1e-9 absolute)."""
    T, b1 = 1000, 1e-4
    k = GaussianKernel(log_snr_betas(T, b1))
    lab = k.log_alpha_bar[1:]
    lam = lab - torch.log(-torch.expm1(lab))
    line = torch.linspace(math.log((1 - b1) / b1), math.log(1e-4 / (1 - 1e-4)), T, dtype=F64)
    assert (lam - line).abs().max().item() < 1e-9


def test_prior_term_vanishes_with_T() -> None:
    """-KL(q(x_T|x_0) || N(0,1)) = -(abar x0^2 - abar - log(1 - abar))/2 (written here) -> 0 like 1/T;
    at T = 10^4, |prior| < 1e-3 nats per dimension for |x0| <= 3."""
    x0 = torch.tensor([[-3.0, 0.0, 1.0, 2.5]], dtype=F64)
    previous = None
    for T in (10, 100, 1000, 10_000):
        k = GaussianKernel(paper_betas(T, 1e-3))
        ab = (1 - 1e-3) / T
        want = -(ab * x0**2 - ab - math.log1p(-ab)) / 2
        got = k.prior_term(x0)
        assert torch.allclose(got, want, rtol=1e-9, atol=EXACT)
        assert (got <= 0).all()
        if previous is not None:
            assert (got.abs() < previous.abs() + EXACT).all()
        previous = got
    assert previous.abs().max().item() < 1e-3


def test_chain_reaches_prior_by_simulation() -> None:
    """Simulating all 1000 steps of the paper schedule from x_0 = 3 for 20k chains gives samples of
    mean ~0.095 and variance ~1: within 5 standard errors of the closed form, and the prior's own
    standard-normal moments within 5 standard errors + the closed-form offset sqrt(abar) x0."""
    T, n = 1000, 20_000
    betas = paper_betas(T, 1e-3)
    g = torch.Generator().manual_seed(13)
    x = torch.full((n,), 3.0, dtype=F64)
    for t in range(1, T + 1):
        b = betas[t].item()
        x = math.sqrt(1 - b) * x + math.sqrt(b) * torch.randn(n, generator=g, dtype=F64)
    ab = (1 - 1e-3) / T
    assert abs(x.mean().item() - math.sqrt(ab) * 3) <= MC_SIGMAS / math.sqrt(n)
    assert abs(x.var().item() - (1 - ab)) <= MC_SIGMAS * math.sqrt(2 / n)
    assert abs(x.mean().item()) <= MC_SIGMAS / math.sqrt(n) + math.sqrt(ab) * 3


# --- edge term and entropies ----------------------------------------------------------------------


@pytest.mark.parametrize("beta_1", [1e-3, 0.05, 0.3])
def test_edge_term_vs_monte_carlo(beta_1: float) -> None:
    """E_{x_1 ~ q(x_1|x_0)} log N(x_0; sqrt(1-b1) x_1, b1), x_1 simulated (200k seeded draws per x_0);
    4 standard errors (3 values of x_0)."""
    k = GaussianKernel(paper_betas(5, beta_1))
    x0 = torch.tensor([-2.0, 0.3, 1.7], dtype=F64)
    g = torch.Generator().manual_seed(14)
    n = 200_000
    x1 = math.sqrt(1 - beta_1) * x0 + math.sqrt(beta_1) * torch.randn(n, 3, generator=g, dtype=F64)
    vals = log_normal(x0, math.sqrt(1 - beta_1) * x1, beta_1)
    est, se = vals.mean(0), vals.std(0) / math.sqrt(n)
    got = k.edge_term(x0[None])[0]
    assert ((got - est).abs() <= 4 * se + EXACT).all(), (got, est, se)


def test_edge_reverse_is_the_equilibrium_reversal_at_t1() -> None:
    """The fixed first reverse step p(x_0|x_1) = N(sqrt(1-b1) x_1, b1) (P App. B.2)."""
    k = GaussianKernel(paper_betas(5, 0.01))
    x1 = torch.tensor([[0.4, -1.0]], dtype=F64)
    mean, logvar = mean_logvar(k.equilibrium_reversal(x1, longs(1, 1)))
    assert torch.allclose(mean, math.sqrt(0.99) * x1, atol=EXACT)
    assert torch.allclose(torch.exp(logvar), torch.full_like(x1, 0.01), rtol=1e-12)


def test_conditional_entropies_vs_monte_carlo() -> None:
    """H_q(X_T|X_0) = -E log q(x_T|x_0) and H_q(X_1|X_0) likewise, by simulation of the chain's
    marginal variance (by hand) and 200k draws; 4 standard errors."""
    betas = random_betas(8, 15)
    k = GaussianKernel(betas)
    x0 = torch.tensor([[0.9]], dtype=F64)
    g = torch.Generator().manual_seed(16)
    for t, got in ((8, k.entropy_T(x0)), (1, k.entropy_1(x0))):
        ab = alpha_bar(betas.tolist(), t)
        x = math.sqrt(ab) * 0.9 + math.sqrt(1 - ab) * torch.randn(200_000, generator=g, dtype=F64)
        vals = -log_normal(x, math.sqrt(ab) * 0.9, 1 - ab)
        assert abs(got.item() - vals.mean().item()) <= 4 * vals.std().item() / math.sqrt(200_000)
    assert k.entropy_prior(x0).item() == pytest.approx(0.5 * math.log(2 * math.pi * math.e), abs=EXACT)


# --- the equilibrium reversal ----------------------------------------------------------------------


@pytest.mark.parametrize("beta", [1e-3, 0.1, 0.5, 0.9])
def test_equilibrium_reversal_is_bayes_under_pi(beta: float) -> None:
    """For x_{t-1} ~ N(0,1), x_t = sqrt(1-b) x_{t-1} + sqrt(b) eps: (a) Bayes on a grid,
    N(x_{t-1}; 0, 1) N(x_t; sqrt(1-b) x_{t-1}, b) normalized, has the reversal's mean and variance
    (1e-8 relative); (b) jointly simulated pairs (200k) have regression slope sqrt(1-b) and residual
    variance b (5 standard errors)."""
    betas = torch.tensor([0.0, 0.02, beta], dtype=F64)
    k = GaussianKernel(betas)
    xt = torch.tensor([[-1.2], [0.0], [2.3]], dtype=F64)
    mean, logvar = mean_logvar(k.equilibrium_reversal(xt, longs(3, 2)))
    for i, v in enumerate(xt.flatten().tolist()):
        grid = torch.linspace(-15, 15, 100_001, dtype=F64)
        logp = log_normal(grid, 0.0, 1.0) + log_normal(v, math.sqrt(1 - beta) * grid, beta)
        m, var = grid_moments(logp, grid)
        assert mean[i].item() == pytest.approx(m, abs=1e-8)
        assert math.exp(logvar[i].item()) == pytest.approx(var, rel=1e-8)

    n = 200_000
    g = torch.Generator().manual_seed(17)
    prev = torch.randn(n, generator=g, dtype=F64)
    cur = math.sqrt(1 - beta) * prev + math.sqrt(beta) * torch.randn(n, generator=g, dtype=F64)
    m_fn, lv_fn = mean_logvar(k.equilibrium_reversal(cur[:, None], longs(n, 2)))
    resid = prev - m_fn[:, 0]
    # E[resid] = 0, E[resid * x_t] = 0 (the conditional mean is right), E[resid^2] = b (its variance)
    assert abs(resid.mean().item()) <= MC_SIGMAS * math.sqrt(beta / n)
    assert abs((resid * cur).mean().item()) <= MC_SIGMAS * math.sqrt(beta / n)
    assert abs((resid**2).mean().item() - math.exp(lv_fn[0, 0].item())) <= MC_SIGMAS * beta * math.sqrt(2 / n)


# --- schedules -------------------------------------------------------------------------------------


def test_learned_schedule_starts_at_paper_and_is_differentiable() -> None:
    """The learned schedule starts equal to the paper schedule (sigmoid(logit b) = b to 1e-12), keeps
    beta_0 = 0 and beta_1 fixed, and d beta_t / d logit_t = beta_t (1 - beta_t) (sigmoid')."""
    T, b1 = 12, 1e-3
    s = make_schedule("learned", T, b1)
    assert s.learnable and s.logits.requires_grad
    betas = s.betas()
    assert torch.allclose(betas, paper_betas(T, b1), rtol=1e-12, atol=0)
    w = torch.linspace(1, 2, T + 1, dtype=F64)
    (grad,) = torch.autograd.grad((w * betas).sum(), s.logits)
    b = paper_betas(T, b1)[2:]
    assert torch.allclose(grad, w[2:] * b * (1 - b), rtol=1e-10)
    assert make_schedule("paper", T, b1).parameters() == []


def test_bound_is_differentiable_in_schedule_logits() -> None:
    """K (reparameterized, frozen t and noise; P 2.4.1) has the finite-difference gradient in the
    learned logits (torch.autograd.gradcheck, float64, default tolerances)."""
    from thermodiff.diffusion.bound import bound_stochastic

    s = make_schedule("learned", 6, 1e-2)
    g = torch.Generator().manual_seed(18)
    x0 = 0.5 + 2 * torch.randn(5, 2, generator=g, dtype=F64)
    t = torch.tensor([2, 3, 4, 5, 6])
    noise = torch.randn(5, 2, generator=g, dtype=F64)

    def K(logits: torch.Tensor) -> torch.Tensor:
        k = GaussianKernel(s.betas(logits))
        # a reverse kernel that depends on the betas only through its own fixed numbers
        fn = lambda xt, tt: GaussianStep(0.9 * xt, torch.full_like(xt, -2.0))  # noqa: E731
        return bound_stochastic(k, fn, x0, t=t, noise=noise)[0].K

    logits = s.logits.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(K, (logits,))


def test_kernel_to_moves_only_when_elsewhere() -> None:
    """Kernel.to is Tensor.to's contract: the same object when the tables are on that device already
    (multipliers call it at every reverse step), a copy with moved tables otherwise."""
    from thermodiff.diffusion.binomial import BinomialKernel
    from thermodiff.diffusion.schedules import binomial_betas

    for kernel in (GaussianKernel(paper_betas(10, 1e-3)), BinomialKernel(binomial_betas(10), 0.3)):
        assert kernel.to("cpu") is kernel and kernel.to(torch.device("cpu")) is kernel
        moved = kernel.to("meta")
        assert moved is not kernel and moved.betas.device.type == "meta"
