"""bench/sampling.py's energy distance against its closed form: for 1-D N(0, 1) and N(mu, 1),
2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 E|N(mu, 2)| - 2 (2 / sqrt(pi)); for one law it is 0, which the
all-pairs estimate misses by its zero self-distances (about 2.26 / n here)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from sampling import energy_distance  # noqa: E402


def folded_normal_mean(mu: float, var: float) -> float:
    """E|Z|, Z ~ N(mu, var)."""
    s = math.sqrt(var)
    return s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * var)) + mu * math.erf(
        mu / (s * math.sqrt(2))
    )


def test_energy_distance_between_two_normals_is_the_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, generator=gen, dtype=torch.float64)
    y = torch.randn(4000, 1, generator=gen, dtype=torch.float64) + 1.0
    truth = 2 * folded_normal_mean(1.0, 2.0) - 2 * (2 / math.sqrt(math.pi))  # 0.5416
    assert abs(energy_distance(x, y, chunk=1500) - truth) < 0.03


def test_energy_distance_of_one_law_with_itself_is_zero_on_average() -> None:
    """20 pairs of 200-point samples of N(0, 1): the mean is 0 within 0.004 (the all-pairs estimate's
    bias, 2 (2 / sqrt(pi)) / 200 = 0.011, would fail)."""
    gen = torch.Generator().manual_seed(1)
    draws = [
        energy_distance(torch.randn(200, 1, generator=gen, dtype=torch.float64),
                        torch.randn(200, 1, generator=gen, dtype=torch.float64))
        for _ in range(20)
    ]  # fmt: skip
    assert abs(sum(draws) / len(draws)) < 0.004
