"""Multipliers r(x) (condition.py, PAPER.md 4) and interpolation (DDPM 4.4) against closed forms.

The Gaussian model here is the EXACT reverse of the forward chain for 1-D data x_0 ~ N(0, s0^2),
derived in `exact_reverse`; every expected value is computed by hand from it, never by the code.
"""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.diffusion import GaussianKernel
from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.schedules import binomial_betas, paper_betas
from thermodiff.diffusion.steps import BernoulliStep, GaussianStep
from thermodiff.errors import ThermodiffError
from thermodiff.sampling.ancestral import p_sample_loop_progressive, sample
from thermodiff.sampling.interpolate import interpolate
from thermodiff.sampling.multipliers import (
    BernoulliMask,
    BernoulliObservation,
    ClassifierGuidance,
    DataBox,
    GaussianObservation,
    LogDensityGradient,
    Mask,
)

T, BETA_1, S0 = 40, 1e-4, 0.5
EXACT = 1e-12  # float64 closed forms vs the same algebra written differently: rounding only
KERNEL = GaussianKernel(paper_betas(T, BETA_1))
BETAS = paper_betas(T, BETA_1).tolist()


def exact_reverse(s0: float = S0) -> tuple[list[float], list[float], list[float]]:
    """(a_t, v_t, V_t): q(x_{t-1} | x_t) = N(a_t x_t, v_t) for x_0 ~ N(0, s0^2).

    V_t = alpha_bar_t s0^2 + 1 - alpha_bar_t is the marginal variance of x_t; x_t = sqrt(1-b) x_{t-1} + noise
    gives cov(x_{t-1}, x_t) = sqrt(1-b) V_{t-1}, so a_t = sqrt(1-b) V_{t-1}/V_t, v_t = V_{t-1} - a_t^2 V_t
    = b V_{t-1} / V_t (Gaussian conditioning)."""
    ab, V = 1.0, [s0**2]
    for t in range(1, T + 1):
        ab *= 1 - BETAS[t]
        V.append(ab * s0**2 + 1 - ab)
    a = [0.0] + [math.sqrt(1 - BETAS[t]) * V[t - 1] / V[t] for t in range(1, T + 1)]
    v = [0.0] + [BETAS[t] * V[t - 1] / V[t] for t in range(1, T + 1)]
    return a, v, V


def exact_model(s0: float = S0):
    """model_fn (x_t, t) -> (a_t x_t, log v_t): the true reverse chain (the sampler fixes step 1 itself)."""
    a, v, _ = exact_reverse(s0)
    a_t, logv_t = torch.tensor(a, dtype=torch.float64), torch.log(torch.tensor(v, dtype=torch.float64))

    def fn(x, t):
        shape = (-1, *([1] * (x.dim() - 1)))
        return GaussianStep(a_t[t].reshape(shape) * x, logv_t[t].reshape(shape).expand_as(x))

    return fn


def run(multipliers, n: int, seed: int, d: int = 1, x_T: torch.Tensor | None = None) -> torch.Tensor:
    """x_0 from the exact chain, started at the exact marginal N(0, V_T) unless x_T is given."""
    g = torch.Generator().manual_seed(seed)
    if x_T is None:
        x_T = torch.randn(n, d, generator=g, dtype=torch.float64) * math.sqrt(exact_reverse()[2][T])
    *_, (t, x) = p_sample_loop_progressive(KERNEL, exact_model(), x_T, g, multipliers)
    assert t == 0
    return x


def tilted_moments(y: float, sd: float, annealed: bool) -> tuple[float, float]:
    """Mean and variance of x_0 under the tilted chain, by propagating Gaussian moments step by step.

    Step t: N(x; a x_t, v) * N(y; x, sd^2)^w has precision P = 1/v + w/sd^2 and mean (a x_t/v + w y/sd^2)/P,
    so x_{t-1} = c x_t + d + N(0, 1/P), c = a/(v P), d = w y/(sd^2 P); w = 1 or (T-t+1)/T; step 1 is the
    fixed reversal N(sqrt(1-b_1) x_1, b_1)."""
    a, v, V = exact_reverse()
    a[1], v[1] = math.sqrt(1 - BETAS[1]), BETAS[1]
    m, S = 0.0, V[T]
    for t in range(T, 0, -1):
        w = (T - t + 1) / T if annealed else 1.0
        P = 1 / v[t] + w / sd**2
        c, d = a[t] / (v[t] * P), w * y / (sd**2 * P)
        m, S = c * m + d, c * c * S + 1 / P
    return m, S


@pytest.mark.parametrize("annealed", [False, True])
def test_gaussian_observation_matches_moment_recursion(annealed: bool) -> None:
    # Neither schedule gives the posterior N(y s0^2/(s0^2+sd^2), s0^2 sd^2/(s0^2+sd^2)) = N(0.4, 0.125)
    # here (constant: ~N(0.49, 0.078); annealed: ~N(0.46, 0.084)): every tilt also multiplies the
    # intermediate marginals (PAPER.md 4). What must hold exactly is the recursion above, which the
    # sampler realises by Monte Carlo. Tolerance: 5 standard errors (n = 100k; se(mean) = sqrt(S/n),
    # se(var) = S sqrt(2/n)).
    y, sd, n = 0.8, 0.5, 100_000
    obs = GaussianObservation(torch.tensor([y]), sd, "annealed" if annealed else "constant", T=T)
    x = run([obs], n, seed=1)
    m, S = tilted_moments(y, sd, annealed)
    assert abs(x.mean().item() - m) < 5 * math.sqrt(S / n)
    assert abs(x.var().item() - S) < 5 * S * math.sqrt(2 / n)
    post_m = y * S0**2 / (S0**2 + sd**2)
    assert 0 < post_m < m < y  # sanity: pulled toward y, past the posterior mean (over-counted r)


def test_one_step_gaussian_product_and_annealing_exponent() -> None:
    # Exact per-element product in precision form, and the exponent w = (T - (t-1))/T for the step
    # producing x_{t-1}: 1/T at t = T, 1 at t = 1.
    mean = torch.tensor([[0.3, -1.0]], dtype=torch.float64)
    logvar = torch.log(torch.tensor([[0.2, 0.05]], dtype=torch.float64))
    y, sd = torch.tensor([1.0, 2.0], dtype=torch.float64), 0.4
    for t, w in ((T, 1 / T), (1, 1.0), (11, 30 / T)):
        tt = torch.tensor([t])
        out = GaussianObservation(y, sd, "annealed", T=T)(GaussianStep(mean, logvar), mean, tt)
        m, lv = out.mean, out.logvar
        prec = 1 / logvar.exp() + w / sd**2
        torch.testing.assert_close(lv, -torch.log(prec), rtol=0, atol=EXACT)
        torch.testing.assert_close(m, (mean / logvar.exp() + w * y / sd**2) / prec, rtol=0, atol=EXACT)


def test_gradient_multipliers_one_step() -> None:
    # log r = -|x - c|^2 / 2: grad = c - x. LogDensityGradient takes it at the mean (P eq. 61),
    # ClassifierGuidance at x_t (ADM Alg. 1), both scaled by Sigma, under the sampler's no_grad.
    mean = torch.tensor([[0.3, -1.0]], dtype=torch.float64)
    x_t = torch.tensor([[2.0, 0.5]], dtype=torch.float64)
    logvar = torch.log(torch.tensor([[0.2, 0.05]], dtype=torch.float64))
    c, var, tt = torch.tensor([1.0, 2.0], dtype=torch.float64), logvar.exp(), torch.tensor([11])

    def log_r(x):
        return -0.5 * ((x - c) ** 2).sum(1)

    with torch.no_grad():
        r = LogDensityGradient(log_r, scale=2.0, schedule="annealed", T=T)
        out = r(GaussianStep(mean, logvar), x_t, tt)
        m, lv = out.mean, out.logvar
        torch.testing.assert_close(m, mean + 2.0 * (30 / T) * var * (c - mean), rtol=0, atol=EXACT)
        assert torch.equal(lv, logvar)
        out = ClassifierGuidance(lambda x, t: log_r(x), scale=3.0)(GaussianStep(mean, logvar), x_t, tt)
        m, lv = out.mean, out.logvar
        torch.testing.assert_close(m, mean + 3.0 * var * (c - x_t), rtol=0, atol=EXACT)
        assert torch.equal(lv, logvar)


def test_constant_r_changes_nothing() -> None:
    # A constant log r has zero gradient: bit-identical samples under the same seed. A Gaussian r of
    # std 1e8 moves each step by var/sd^2 <= 1e-16 relative: identical to 1e-9.
    base = run([], 500, seed=3, d=2)
    flat = LogDensityGradient(lambda x: torch.zeros(x.shape[0]))
    flat_grad = LogDensityGradient(lambda x: 0.0 * x.sum(1) + 3.0)
    assert torch.equal(run([flat, flat_grad], 500, seed=3, d=2), base)
    wide = GaussianObservation(torch.tensor([5.0, -5.0]), 1e8)
    torch.testing.assert_close(run([wide], 500, seed=3, d=2), base, rtol=0, atol=1e-9)


def test_mask_gaussian_bit_exact() -> None:
    # Known coordinates come out exactly (torch.equal) even after a later multiplier and the fixed
    # step-1 reversal; unknown ones stay finite and are still sampled.
    values = torch.tensor([[0.123456789, 0.0, -2.5]], dtype=torch.float64)
    mask = torch.tensor([1, 0, 1])
    later = GaussianObservation(torch.tensor([1.0, 1.0, 1.0]), 0.3)
    inpaint = Mask(values, mask)
    x_T = inpaint.fill(torch.randn(64, 3, dtype=torch.float64))  # the paper's start state
    assert torch.equal(x_T[:, 0], values[0, 0].expand(64))
    x = run([inpaint, later], 64, seed=4, d=3, x_T=x_T)
    assert torch.isfinite(x).all()
    assert torch.equal(x[:, [0, 2]], values[:, [0, 2]].expand(64, 2))
    assert x[:, 1].std() > 0.05


def _alpha_bar(t: int) -> float:
    return math.prod(1 - b for b in BETAS[1 : t + 1])


def test_mask_forward_schedule_follows_q_and_ends_exact() -> None:
    # Known coordinates of x_{t-1} ~ q(x_{t-1} | x_0 = v) = N(sqrt(ab_{t-1}) v, 1 - ab_{t-1}), products
    # of (1 - beta) written here; at t = 1 the delta, so the output is bit-exact.
    values = torch.tensor([[0.7, 0.0, -1.3]], dtype=torch.float64)
    mask = torch.tensor([1, 0, 1])
    r = Mask(values, mask, kernel=KERNEL)
    model = GaussianStep(
        torch.full((2, 3), 0.25, dtype=torch.float64), torch.full((2, 3), -3.0, dtype=torch.float64)
    )
    for step in (T, 17, 2):
        out = r(model, torch.zeros(2, 3, dtype=torch.float64), torch.full((2,), step))
        mean, logvar = out.mean, out.logvar
        ab = _alpha_bar(step - 1)
        assert mean[:, 1].tolist() == [0.25, 0.25] and logvar[:, 1].tolist() == [-3.0, -3.0]
        want = [math.sqrt(ab) * v for v in (0.7, -1.3)]
        assert mean[0, [0, 2]].tolist() == pytest.approx(want, rel=1e-12)
        assert logvar[0, [0, 2]].tolist() == pytest.approx([math.log(1 - ab)] * 2, rel=1e-10)
    x = run([r], 64, seed=4, d=3)
    assert torch.equal(x[:, [0, 2]], values[:, [0, 2]].expand(64, 2))
    assert x[:, 1].std() > 0.05


def test_data_box_clamps_the_predicted_x0() -> None:
    # mean = c0 x0 + ct x_t with c0 = sqrt(ab_{t-1}) b_t / (1 - ab_t), ct = sqrt(1 - b_t)(1 - ab_{t-1}) /
    # (1 - ab_t) (DDPM eq. 7, by hand); the box keeps x0 in [-1, 2] and leaves the variance alone.
    x0 = torch.tensor([[-3.0, -0.5, 1.9, 5.0]], dtype=torch.float64)
    x_t = torch.tensor([[0.3, -1.2, 2.2, 0.0]], dtype=torch.float64)
    box = DataBox(KERNEL, torch.tensor(-1.0), torch.tensor(2.0))
    for step in (T, 9, 2, 1):
        ab, ab_prev, b = _alpha_bar(step), _alpha_bar(step - 1), BETAS[step]
        c0, ct = math.sqrt(ab_prev) * b / (1 - ab), math.sqrt(1 - b) * (1 - ab_prev) / (1 - ab)
        logvar = torch.full_like(x0, -2.0)
        out = box(GaussianStep(c0 * x0 + ct * x_t, logvar), x_t, torch.tensor([step]))
        mean, lv = out.mean, out.logvar
        pairs = zip(x0[0].tolist(), x_t[0].tolist(), strict=True)
        want = [c0 * min(max(v, -1.0), 2.0) + ct * xt for v, xt in pairs]
        assert mean[0].tolist() == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert torch.equal(lv, logvar)


def test_mask_bernoulli_bit_exact() -> None:
    kernel = BinomialKernel(binomial_betas(50), 0.5)
    values = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    mask = torch.tensor([1, 1, 0, 0, 1, 0], dtype=torch.bool)
    g = torch.Generator().manual_seed(5)
    mults = [BernoulliMask(values, mask), BernoulliObservation(torch.full((6,), 0.3))]
    x = sample(kernel, kernel.equilibrium_reversal, (6,), 200, g, multipliers=mults)
    with pytest.raises(ThermodiffError, match="0 or 1"):
        BernoulliMask(torch.full((6,), 0.5), mask)
    assert torch.equal(x[:, mask], values[mask].expand(200, -1))
    assert set(x.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("c", [0.01, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("d", [0.05, 0.5, 0.8])
def test_bernoulli_product_matches_enumeration(c: float, d: float) -> None:
    # P(x=1) of the normalized product Bern(c) * Bern(d) by enumerating x in {0, 1}; annealed: the
    # product with r^w, enumerated as r(1)^w / (r(1)^w + r(0)^w) (no closed form used).
    logit = torch.full((1, 1), math.log(c) - math.log1p(-c), dtype=torch.float64)
    for schedule, t in (("constant", 7), ("annealed", 7), ("annealed", 1)):
        w = 1.0 if schedule == "constant" else (T - t + 1) / T
        unnorm = {1: c * d**w, 0: (1 - c) * (1 - d) ** w}  # x = 1 and x = 0
        want = unnorm[1] / (unnorm[0] + unnorm[1])
        mult = BernoulliObservation(torch.tensor([d], dtype=torch.float64), schedule, T=T)
        out = mult(BernoulliStep(logit), logit, torch.tensor([t])).logit
        assert torch.sigmoid(out).item() == pytest.approx(want, abs=EXACT)


def test_wrong_shape_mask_is_one_line_error() -> None:
    with pytest.raises(ThermodiffError) as err:
        Mask(torch.zeros(3), torch.ones(3), shape=(2,))
    assert "\n" not in str(err.value) and "(3)" in str(err.value) and "(B, 2)" in str(err.value)
    mult = Mask(torch.zeros(1, 3), torch.ones(1, 3))  # no expected shape: checked at the first call
    with pytest.raises(ThermodiffError) as err:
        run([mult], 4, seed=0, d=2)
    msg = str(err.value)
    assert "\n" not in msg and "(1, 3)" in msg and "(4, 2)" in msg
    with pytest.raises(ThermodiffError, match="0 and 1"):
        Mask(torch.zeros(2), torch.tensor([0.5, 1.0]))


def test_interpolation() -> None:
    model = exact_model()
    x_a = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    x_b = torch.tensor([[-1.2, 0.7]], dtype=torch.float64)
    lams = [0.0, 0.25, 0.5, 1.0]

    def interp(t: int, seed: int = 0) -> torch.Tensor:
        return interpolate(KERNEL, model, x_a, x_b, t, lams, torch.Generator().manual_seed(seed))

    # t = 0: the plain linear mix.
    mix = torch.cat([(1 - v) * x_a + v * x_b for v in lams])
    torch.testing.assert_close(interp(0), mix, rtol=0, atol=EXACT)
    # t = 1: noise sqrt(b_1) = 0.01 in, the fixed reversal's 0.01 out: the ends come back within
    # 6 sd (sd = sqrt(2 b_1) ~ 0.014).
    out = interp(1)
    assert out.shape == (4, 2)
    torch.testing.assert_close(out[0], x_a[0], rtol=0, atol=6 * math.sqrt(2 * BETA_1))
    torch.testing.assert_close(out[-1], x_b[0], rtol=0, atol=6 * math.sqrt(2 * BETA_1))
    # t = 20: the exact chain is affine in x_t given its noise, and x_t is affine in lambda given the
    # shared encoding noise, so with the same noise for every lambda the output is affine in lambda.
    out = interp(20)
    assert (out[0] - out[-1]).abs().min() > 1e-3  # the ends differ: the check is not vacuous
    for i, v in enumerate(lams):
        torch.testing.assert_close(out[i], (1 - v) * out[0] + v * out[-1], rtol=0, atol=EXACT)
    # x_a = x_b: one encoding noise for both inputs, so every lambda decodes the same state.
    same = interpolate(KERNEL, model, x_a, x_a, 20, lams, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, same[:1].expand(4, 2), rtol=0, atol=EXACT)
    assert torch.equal(interp(20), out)  # seeded: reproducible
    assert not torch.equal(interp(20, seed=1), out)
