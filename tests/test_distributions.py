"""The pure distribution functions against analytic truths: closed forms written out by hand,
Monte Carlo averages of log-densities written here, CDFs from math.erf/erfc, enumeration over {0, 1}."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.diffusion.distributions import (
    bernoulli_entropy,
    bernoulli_kl,
    discretized_gaussian_log_likelihood,
    normal_entropy,
    normal_kl,
)

F64 = torch.float64
EXACT = 1e-12  # float64 closed form vs closed form: only rounding differs
N_MC = 400_000
MC_SIGMAS = 4.0  # a seeded Monte Carlo mean must lie within 4 standard errors of the truth


def f64(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=F64)


def log_normal(x: torch.Tensor, mean: float, var: float) -> torch.Tensor:
    """log N(x; mean, var), written here independently of the package."""
    return -0.5 * math.log(2 * math.pi * var) - (x - mean) ** 2 / (2 * var)


def mc_mean(values: torch.Tensor) -> tuple[float, float]:
    return values.mean().item(), values.std().item() / math.sqrt(values.numel())


# --- normal_kl -------------------------------------------------------------------------------


def test_normal_kl_known_numbers() -> None:
    """KL(N(1,4) || N(0,1)) = (4 + 1 - 1 - ln 4)/2 = 2 - ln 2; KL(N(0,1) || N(1,4)) = ln 2 + 2/8 - 1/2;
    KL(p || p) = 0."""
    got = normal_kl(
        f64(1.0, 0.0, 0.3), f64(math.log(4), 0.0, -1.7), f64(0.0, 1.0, 0.3), f64(0.0, math.log(4), -1.7)
    )
    want = [2 - math.log(2), math.log(2) - 0.25, 0.0]
    assert got.tolist() == pytest.approx(want, abs=EXACT)


@pytest.mark.parametrize(
    "m1,v1,m2,v2",
    [(0.0, 1.0, 0.0, 1.0), (0.5, 0.3, -0.2, 2.0), (-1.0, 4.0, 1.0, 0.5), (3.0, 1e-2, 2.9, 2e-2)],
)
def test_normal_kl_vs_monte_carlo(m1: float, v1: float, m2: float, v2: float) -> None:
    """KL = E_{x~N(m1,v1)} [log N(x;m1,v1) - log N(x;m2,v2)], averaged over 400k seeded draws.
    Tolerance: 4 standard errors of that average (plus 1e-12 when the KL is exactly 0)."""
    g = torch.Generator().manual_seed(1)
    x = m1 + math.sqrt(v1) * torch.randn(N_MC, generator=g, dtype=F64)
    est, se = mc_mean(log_normal(x, m1, v1) - log_normal(x, m2, v2))
    got = normal_kl(f64(m1), f64(math.log(v1)), f64(m2), f64(math.log(v2))).item()
    assert got >= 0.0
    assert abs(got - est) <= MC_SIGMAS * se + EXACT


# --- normal_entropy --------------------------------------------------------------------------


def test_normal_entropy_known_numbers() -> None:
    got = normal_entropy(f64(0.0, math.log(0.01), math.log(7.0)))
    want = [0.5 * math.log(2 * math.pi * math.e * v) for v in (1.0, 0.01, 7.0)]
    assert got.tolist() == pytest.approx(want, abs=EXACT)


@pytest.mark.parametrize("var", [1e-4, 0.5, 1.0, 9.0])
def test_normal_entropy_vs_monte_carlo(var: float) -> None:
    """H = -E log N(x; 0, var); 400k seeded draws, 4 standard errors."""
    g = torch.Generator().manual_seed(2)
    x = math.sqrt(var) * torch.randn(N_MC, generator=g, dtype=F64)
    est, se = mc_mean(-log_normal(x, 0.0, var))
    got = normal_entropy(f64(math.log(var))).item()
    assert abs(got - est) <= MC_SIGMAS * se


# --- discretized_gaussian_log_likelihood ----------------------------------------------------

BIN = 2.0 / 255.0
GRID = torch.linspace(-1.0, 1.0, 256, dtype=F64)  # the 256 bin centres of 8-bit data in [-1, 1]


def phi(z: float) -> float:
    """Standard normal CDF from math.erf (independent of torch)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def upper_tail(z: float) -> float:
    """1 - Phi(z) via erfc: accurate far into the tail (no cancellation)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@pytest.mark.parametrize("mean", [-1.0, -0.37, 0.0, 0.5, 1.0, -5.0, 20.0])
@pytest.mark.parametrize("log_scale", [-9.0, -5.0, -2.0, 0.0, 3.0, 6.0])
def test_discretized_sums_to_one(mean: float, log_scale: float) -> None:
    """The 256 bin probabilities sum to 1 (edge bins extend to +-inf), for means inside and far
    outside [-1, 1] and scales from 1e-4 (all mass in one bin) to 400 (spread over all bins).
    Tolerance 1e-9: float64 log-CDF differences; the worst case is scale 400, where each bin's
    probability is a difference of two log-CDFs ~0.69 apart by ~1e-5 (relative rounding ~1e-11)."""
    lp = discretized_gaussian_log_likelihood(
        GRID, torch.full_like(GRID, mean), torch.full_like(GRID, log_scale)
    )
    assert not torch.isnan(lp).any()
    assert (lp <= 0).all()
    assert torch.exp(lp).sum().item() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("mean,log_scale", [(0.0, 0.0), (0.2, -2.0), (-0.6, -4.0), (0.9, 1.0)])
def test_discretized_equals_cdf_difference(mean: float, log_scale: float) -> None:
    """P(bin) = Phi((x + w/2 - m)/s) - Phi((x - w/2 - m)/s) for inner bins, Phi((x + w/2 - m)/s) for the
    first bin and 1 - Phi((x - w/2 - m)/s) for the last; computed here with math.erf/erfc. Compared on
    bins whose probability exceeds 1e-8, where the erf difference itself is accurate to ~1e-8
    relative; tolerance 1e-7 relative."""
    s = math.exp(log_scale)
    lp = discretized_gaussian_log_likelihood(
        GRID, torch.full_like(GRID, mean), torch.full_like(GRID, log_scale)
    )
    checked = 0
    for k, x in enumerate(GRID.tolist()):
        if k == 0:
            want = phi((x + BIN / 2 - mean) / s)
        elif k == 255:
            want = upper_tail((x - BIN / 2 - mean) / s)
        else:
            want = phi((x + BIN / 2 - mean) / s) - phi((x - BIN / 2 - mean) / s)
        if want > 1e-8:
            assert math.exp(lp[k].item()) == pytest.approx(want, rel=1e-7), (k, x)
            checked += 1
    assert checked >= 3


def test_discretized_far_tail_is_accurate() -> None:
    """Bins 5..35 standard deviations above the mean (probabilities down to ~1e-270): the naive CDF
    difference would be 0 - 0 here. Truth from erfc differences (no cancellation: both terms are
    tails); tolerance 1e-9 relative on the log."""
    mean, s = -0.5, 0.02
    lp = discretized_gaussian_log_likelihood(
        GRID, torch.full_like(GRID, mean), torch.full_like(GRID, math.log(s))
    )
    checked = 0
    for k, x in enumerate(GRID.tolist()):
        lo, hi = (x - BIN / 2 - mean) / s, (x + BIN / 2 - mean) / s
        if 5.0 < lo < 35.0 and k < 255:
            want = math.log(upper_tail(lo) - upper_tail(hi))
            assert lp[k].item() == pytest.approx(want, rel=1e-9), (k, x)
            checked += 1
    assert checked >= 20


def test_discretized_float32_sums_to_one() -> None:
    """In float32 the same sum is within 1e-4 of 1 for ordinary means and scales (float32 log-CDF
    rounding, ~1e-7 relative per bin, accumulated over 256 bins and amplified by the expm1 of
    small differences)."""
    x = GRID.float()
    for mean, log_scale in [(0.0, -3.0), (0.3, -1.0), (-0.8, 0.0)]:
        lp = discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.full_like(x, log_scale))
        assert torch.exp(lp.double()).sum().item() == pytest.approx(1.0, abs=1e-4)


# --- Bernoulli ----------------------------------------------------------------------------------

PROBS = [0.0, 1e-9, 0.1, 0.5, 0.77, 1.0 - 1e-9, 1.0]


def xlogy(a: float, b: float) -> float:
    return 0.0 if a == 0 else a * math.log(b)


@pytest.mark.parametrize("p", PROBS)
def test_bernoulli_entropy_vs_enumeration(p: float) -> None:
    """H = -sum_{x in {0,1}} P(x) log P(x), with 0 log 0 = 0."""
    want = -(xlogy(p, p) + xlogy(1 - p, 1 - p))
    assert bernoulli_entropy(f64(p)).item() == pytest.approx(want, abs=EXACT)


@pytest.mark.parametrize("p", PROBS)
@pytest.mark.parametrize("q", [1e-6, 0.2, 0.5, 0.9, 1 - 1e-6])
def test_bernoulli_kl_vs_enumeration(p: float, q: float) -> None:
    """KL = sum_x P(x) log(P(x)/Q(x)) over x in {0, 1}; 1e-9 absolute for float64 logs of up to 14."""
    want = sum(xlogy(a, a) - xlogy(a, b) for a, b in ((p, q), (1 - p, 1 - q)))
    got = bernoulli_kl(f64(p), f64(q)).item()
    assert got == pytest.approx(want, abs=1e-9)
    assert got >= -EXACT
