"""The swiss roll's exact density (P 3.1.1) and its standardization, against analytic truths: total
mass 1 on a 2-D grid, the thin-tube limit on the curve, and the change of variables of the scaling."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.config import DataConfig
from thermodiff.data import load_dataset, toy

F64 = torch.float64
A, B = 1.5 * math.pi, 4.5 * math.pi  # the curve parameter's range


def curve(s: float) -> tuple[float, float]:
    """c(s) = (s cos s, s sin s) / 10, written here."""
    return s * math.cos(s) / 10, s * math.sin(s) / 10


def speed(s: float) -> float:
    """|c'(s)| = sqrt(1 + s^2) / 10."""
    return math.sqrt(1 + s * s) / 10


def grid_mass(log_prob, lo: tuple[float, float], hi: tuple[float, float], h: float) -> float:
    """Integral of exp(log_prob) over the box [lo, hi] by the 2-D trapezoid rule with spacing ~h."""
    xs = [torch.linspace(lo[i], hi[i], int(math.ceil((hi[i] - lo[i]) / h)) + 1, dtype=F64) for i in (0, 1)]
    X, Y = torch.meshgrid(*xs, indexing="ij")
    p = torch.exp(log_prob(torch.stack([X.flatten(), Y.flatten()], 1))).reshape(X.shape)
    return torch.trapezoid(torch.trapezoid(p, xs[1], dim=1), xs[0]).item()


def roll_box(margin: float) -> tuple[tuple[float, float], tuple[float, float]]:
    pts = [curve(A + (B - A) * i / 20_000) for i in range(20_001)]
    lo = tuple(min(p[i] for p in pts) - margin for i in (0, 1))
    hi = tuple(max(p[i] for p in pts) + margin for i in (0, 1))
    return lo, hi


def test_density_integrates_to_one() -> None:
    """sigma = 0.05: trapezoid on a grid of spacing sigma/2 over the roll's bounding box +- 6 sigma.
    Mass outside +-6 sigma is ~1e-9; the trapezoid rule on a smooth Gaussian tube of width 2h is
    spectrally accurate (error ~exp(-2 pi^2 (sigma/h)^2) = 1e-34); tolerance 1e-8."""
    sigma = 0.05
    lo, hi = roll_box(6 * sigma)
    mass = grid_mass(lambda x: toy.swiss_roll_log_prob(x, sigma), lo, hi, sigma / 2)
    assert mass == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("s0", [2.0 * math.pi, 3.0 * math.pi, 4.0 * math.pi])
def test_thin_tube_limit_on_the_curve(s0: float) -> None:
    """For sigma -> 0 at a point on the curve, p(c(s0)) -> 1 / ((b - a) |c'(s0)| sqrt(2 pi) sigma)
    (a 1-D Gaussian integral along the curve, other windings > 0.6 away). At sigma = 0.002 the
    curvature correction is O((sigma kappa)^2) < 2e-5 relative (observed ~1e-6); tolerance 1e-4."""
    sigma = 0.002
    x = torch.tensor([curve(s0)], dtype=F64)
    got = math.exp(toy.swiss_roll_log_prob(x, sigma).item())
    want = 1.0 / ((B - A) * speed(s0) * math.sqrt(2 * math.pi) * sigma)
    assert got == pytest.approx(want, rel=1e-4)


def test_density_near_the_ends_of_the_roll() -> None:
    """Where the roll's ends cut the Gaussian in s off, the integrand's slope at the ends is not zero,
    which costs a coarse trapezoid rule ~6e-4 nats. Reference: the trapezoid rule written here on
    400,001 nodes (its h^2 error term ~2e-8 nats at these points); tolerance 1e-6 nats."""
    sigma = 0.05
    x = torch.tensor([curve(A + 0.01), curve(B - 0.01), (0.0, 0.0), curve(A + 3.0)], dtype=F64)
    s = torch.linspace(A, B, 400_001, dtype=F64)
    c = torch.stack([s * torch.cos(s), s * torch.sin(s)], 1) / 10
    f = torch.exp(-(torch.cdist(x, c) ** 2) / (2 * sigma**2)) / (2 * math.pi * sigma**2 * (B - A))
    want = torch.log(torch.trapezoid(f, s, dim=1))
    assert (toy.swiss_roll_log_prob(x, sigma) - want).abs().max().item() < 1e-6


def _dataset(n_train: int = 5000):
    return load_dataset(DataConfig(name="swiss_roll", sigma=0.05, n_train=n_train, n_test=500, seed=4))


def test_standardized_data_has_zero_mean_and_unit_variance() -> None:
    """One global shift and one global scale (the paper code's scalar pair): all training values in
    model space have mean 0 and population variance 1, to float64 rounding; the shape is preserved."""
    ds = _dataset()
    y = ds.train
    assert y.dtype == F64 and y.shape == (5000, 2)
    assert abs(y.mean().item()) < 1e-12 and y.var(unbiased=False).item() == pytest.approx(1.0, abs=1e-12)
    raw = toy.swiss_roll(5000, 0.05, seed=4).numpy()
    assert ds.scaling.scale == pytest.approx(1.0 / raw.std(), rel=1e-12)  # numpy: all values, one std
    assert ds.scaling.shift == pytest.approx((raw.mean(),) * 2, rel=1e-12)
    assert torch.allclose(ds.scaling.invert(y), torch.from_numpy(raw), atol=1e-12)
    assert ds.spec.shape == (2,) and ds.spec.kind == "continuous"


def test_model_space_log_prob_is_raw_minus_d_log_scale() -> None:
    """log p_y(y) = log p_x(x) - d log(scale) for y = (x - shift) scale, d = 2; 1e-10 absolute."""
    ds = _dataset()
    raw = toy.swiss_roll(500, 0.05, seed=5)  # the test split uses seed + 1
    assert torch.allclose(ds.scaling.apply(raw), ds.test, atol=1e-12)
    want = toy.swiss_roll_log_prob(raw, 0.05) - 2 * math.log(ds.scaling.scale)
    assert torch.allclose(ds.true_log_prob(ds.test), want, atol=1e-10)


def test_model_space_density_integrates_to_one() -> None:
    """The change of variables is right iff exp(true_log_prob) integrates to 1 over model space too;
    same grid rule as above, mapped into model space; tolerance 1e-8."""
    ds = _dataset()
    scale = ds.scaling.scale
    shift = ds.scaling.shift
    lo, hi = roll_box(6 * 0.05)
    lo_y = tuple((lo[i] - shift[i]) * scale for i in (0, 1))
    hi_y = tuple((hi[i] - shift[i]) * scale for i in (0, 1))
    mass = grid_mass(ds.true_log_prob, lo_y, hi_y, 0.05 * scale / 2)
    assert mass == pytest.approx(1.0, abs=1e-8)
