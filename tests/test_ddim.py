"""DDIM (sampling/ddim.py) on a model with a known answer: data x_0 ~ N(0, s^2), whose exact noise
prediction is E[eps | x_t] = sqrt(1 - ab_t) x_t / (ab_t s^2 + 1 - ab_t) (Gaussian conditioning), fed to
the eps parameterization. Every sampler is then linear-Gaussian, x_{t-1} = a_t x_t + sigma_t z, so the
law of x_0 is N(0, V_0) with V_0 computed here by the recursion V_{t-1} = a_t^2 V_t + sigma_t^2, a_t
and sigma_t^2 written from DDIM eq. 12 and DDPM eq. 7 by hand."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.diffusion import EpsReverse, GaussianKernel, PointStep
from thermodiff.diffusion.respace import Respacing
from thermodiff.diffusion.schedules import linear_betas
from thermodiff.errors import ThermodiffError
from thermodiff.sampling.ancestral import p_sample_loop_progressive, sample
from thermodiff.sampling.ddim import DDIMStep, ddim_encode

T, S = 200, 0.5
FULL = GaussianKernel(linear_betas(T, 1e-4, 0.05))


def exact_eps_model(kernel: GaussianKernel, s: float = S, with_eps: bool = True):
    """model_fn: the eps parameterization ("small" variance) fed the exact E[eps | x_t] for N(0, s^2);
    with_eps: it also offers that eps (as DiffusionModel.model_fn does), which DDIM then reads directly;
    without, DDIM reads x_0 off the step's mean."""
    rev = EpsReverse("small")

    def exact(x_t, t):
        ab = kernel.sqrt_alpha_bar[t].reshape(-1, 1) ** 2
        return (1 - ab).sqrt() * x_t / (ab * s**2 + 1 - ab)

    def fn(x_t, t):
        return rev.p_params(kernel, exact(x_t, t), x_t, t)

    fn.step_type = rev.step_type
    if with_eps:
        fn.eps = exact
    return fn


def law_of_x1(kernel: GaussianKernel, eta: float) -> float:
    """V_1, the variance of x_1 when x_T ~ N(0, 1): DDIM's step at eta, written from its eq. 12 (eta = 1
    is DDPM's posterior step, DDPM eq. 7, with variance beta~_t)."""
    b = kernel.betas.tolist()
    ab = [math.prod(1 - b[u] for u in range(1, t + 1)) for t in range(kernel.T + 1)]
    V = 1.0
    for t in range(kernel.T, 1, -1):
        g = math.sqrt(1 - ab[t]) / (ab[t] * S**2 + 1 - ab[t])  # eps = g x_t
        x0 = (1 - math.sqrt(1 - ab[t]) * g) / math.sqrt(ab[t])  # x0_hat = x0 * x_t
        var = eta**2 * b[t] * (1 - ab[t - 1]) / (1 - ab[t])
        a = math.sqrt(ab[t - 1]) * x0 + math.sqrt(1 - ab[t - 1] - var) * g
        V = a * a * V + var
    return V


def _x1(kernel, fn, n: int, seed: int, rule=None) -> torch.Tensor:
    x_T = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 1)
    for t, x in p_sample_loop_progressive(kernel, fn, x_T, gen, rule=rule):
        if t == 1:
            return x
    raise AssertionError("the chain never reached x_1")


def test_eta_1_is_the_ancestral_step_with_the_posterior_variance() -> None:
    fn, ddim = exact_eps_model(FULL), DDIMStep(FULL, 1.0)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    for step in (2, 17, T):
        t = torch.full((7,), step)
        p = fn(x, t)
        for d in (ddim(FULL, fn, x, t, step), ddim.from_step(p, x, t)):
            torch.testing.assert_close(d.mean, p.mean, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(d.logvar, p.logvar, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_the_step_from_eps_equals_the_step_read_off_the_mean(eta) -> None:
    """DDIM eq. 12 on the network's eps and on the x_0 read off the model's mean: one step, two routes."""
    kernel = Respacing.of(T, "ddim20").kernel(FULL)
    fn, ddim = exact_eps_model(kernel), DDIMStep(kernel, eta)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    for step in (2, 9, kernel.T):
        t = torch.full((7,), step)
        a, b = ddim(kernel, fn, x, t, step), ddim.from_step(fn(x, t), x, t)
        assert type(a) is type(b)
        torch.testing.assert_close(a.mean, b.mean, rtol=1e-12, atol=1e-12)


def test_eta_0_is_a_point_and_draws_no_noise() -> None:
    """eta = 0: every step a PointStep; the chain leaves the generator's state as it found it."""
    fn, ddim = exact_eps_model(FULL), DDIMStep(FULL, 0.0)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    assert all(isinstance(ddim(FULL, fn, x, torch.full((7,), s), s), PointStep) for s in (1, 2, T))
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    sample(FULL, fn, (1,), 7, gen, x_T=x, rule=ddim)
    assert torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("kept", [None, "25"], ids=["full", "respaced"])
def test_eta_1_and_ancestral_draw_from_the_same_known_law(kept) -> None:
    """20,000 draws of x_1 each: variance within 4 standard errors (sqrt(2/n) relative) of V_1."""
    kernel = FULL if kept is None else Respacing.of(T, kept).kernel(FULL)
    fn, n = exact_eps_model(kernel), 20_000
    want = law_of_x1(kernel, 1.0)
    for x in (_x1(kernel, fn, n, 0), _x1(kernel, fn, n, 10, DDIMStep(kernel, 1.0))):
        assert abs(float(x.mean())) < 4 * math.sqrt(want / n)
        assert float(x.var()) == pytest.approx(want, rel=4 * math.sqrt(2 / n))
    half = _x1(kernel, fn, n, 20, DDIMStep(kernel, 0.5))
    assert float(half.var()) == pytest.approx(law_of_x1(kernel, 0.5), rel=4 * math.sqrt(2 / n))


@pytest.mark.parametrize("with_eps", [True, False], ids=["eps", "mean"])
@pytest.mark.parametrize("kept", [None, "ddim20", "list:2,30,90,200"], ids=["full", "ddim20", "list"])
def test_eta_0_encodes_and_decodes_to_float_tolerance(kept, with_eps) -> None:
    kernel = FULL if kept is None else Respacing.of(T, kept).kernel(FULL)
    fn = exact_eps_model(kernel, with_eps=with_eps)
    x0 = torch.tensor([[-1.3], [0.2], [0.9]], dtype=torch.float64)
    x_T = ddim_encode(kernel, fn, x0)
    back = sample(kernel, fn, (1,), 3, x_T=x_T, rule=DDIMStep(kernel, 0.0))
    torch.testing.assert_close(back, x0, rtol=0, atol=1e-9)
    # deterministic: the law of x_1 from x_T ~ N(0, 1) is the eta = 0 recursion exactly (no noise)
    x_1 = _x1(kernel, fn, 4, 0, DDIMStep(kernel, 0.0))
    x_T = torch.randn(4, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(x_1, x_T * math.sqrt(law_of_x1(kernel, 0.0)), rtol=1e-9, atol=1e-12)


def test_bad_eta_and_binomial_are_refused() -> None:
    with pytest.raises(ThermodiffError):
        DDIMStep(FULL, 1.5)
    from thermodiff.diffusion import BinomialKernel
    from thermodiff.diffusion.schedules import binomial_betas

    with pytest.raises(ThermodiffError):
        DDIMStep(BinomialKernel(binomial_betas(10), 0.5), 0.0)


def test_a_mask_and_a_box_keep_the_point() -> None:
    """On DDIM's point (eta = 0): a Mask sets known coordinates and it stays a point, unless it follows
    the forward chain (known coordinates drawn from q(x_{t-1} | x_0 = value), the rest still exact); a
    DataBox clamps the x_0 read through DDIM's own (c0', ct')."""
    from thermodiff.sampling.multipliers import DataBox, Mask

    g = torch.Generator().manual_seed(0)
    mean, x = (torch.randn(2, 3, generator=g, dtype=torch.float64) for _ in range(2))
    t, step = torch.full((2,), 5), PointStep(mean)
    values = torch.tensor([[0.7, math.nan, math.nan]], dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0]])
    out = Mask(values, mask)(step, x, t)
    assert isinstance(out, PointStep)
    assert torch.equal(out.mean[:, 0], torch.full((2,), 0.7, dtype=torch.float64))
    assert torch.equal(out.mean[:, 1:], mean[:, 1:])
    noisy = Mask(values, mask, kernel=FULL)(step, x, t)
    ab4 = math.prod(1 - b for b in FULL.betas[1:5].tolist())
    torch.testing.assert_close(noisy.mean[:, 0], torch.full((2,), 0.7 * math.sqrt(ab4), dtype=torch.float64))
    torch.testing.assert_close(noisy.logvar[:, 0], torch.full((2,), math.log(1 - ab4), dtype=torch.float64))
    assert torch.equal(noisy.mean[:, 1:], mean[:, 1:]) and bool(torch.isneginf(noisy.logvar[:, 1:]).all())
    ddim = DDIMStep(FULL, 0.0)
    boxed = DataBox(ddim, -0.5, 0.5)(step, x, t)
    ab5 = ab4 * (1 - float(FULL.betas[5]))
    ct = math.sqrt((1 - ab4) / (1 - ab5))  # DDIM eq. 12 at sigma = 0, by hand
    c0 = math.sqrt(ab4) - ct * math.sqrt(ab5)
    assert isinstance(boxed, PointStep)
    torch.testing.assert_close(boxed.mean, c0 * ((mean - ct * x) / c0).clamp(-0.5, 0.5) + ct * x)
