"""The Fréchet distance (evaluation/frechet.py) against closed forms for two Gaussians: commuting
(diagonal) covariances, sum (sqrt a_i - sqrt b_i)^2; any 2 x 2 pair, tr (C1 C2)^1/2 =
sqrt(tr C1 C2 + 2 sqrt(det C1 det C2)) (the two eigenvalues' roots, summed and squared); and fitted
to samples of two known Gaussians, the closed form within sampling error."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.errors import ThermodiffError
from thermodiff.evaluation.frechet import classifier_features, frechet_distance, frechet_of, sqrtm_psd
from thermodiff.nets.classifier import NoisyClassifier

F64 = torch.float64


def spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=F64)


def test_sqrtm_squares_back_and_is_symmetric() -> None:
    a = spd(6, 0)
    r = sqrtm_psd(a)
    torch.testing.assert_close(r @ r, a, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(r, r.T)
    assert bool((torch.linalg.eigvalsh(r) > 0).all())


def test_diagonal_covariances_have_the_closed_form() -> None:
    a, b = torch.tensor([0.5, 2.0, 9.0], dtype=F64), torch.tensor([4.0, 0.25, 1.0], dtype=F64)
    m1, m2 = torch.tensor([1.0, 0.0, -1.0], dtype=F64), torch.tensor([0.0, 2.0, -1.0], dtype=F64)
    exact = float(((m1 - m2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert frechet_distance(m1, torch.diag(a), m2, torch.diag(b)) == pytest.approx(exact, rel=1e-12)
    assert frechet_distance(m1, torch.diag(a), m1, torch.diag(a)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_by_two_non_commuting_covariances_have_the_closed_form(seed: int) -> None:
    c1, c2 = spd(2, seed), spd(2, seed + 10)
    assert not torch.allclose(c1 @ c2, c2 @ c1)
    m1, m2 = torch.tensor([0.3, -1.0], dtype=F64), torch.tensor([2.0, 0.5], dtype=F64)
    cross = math.sqrt(float(torch.trace(c1 @ c2)) + 2 * math.sqrt(float(torch.det(c1) * torch.det(c2))))
    exact = float(((m1 - m2) ** 2).sum() + torch.trace(c1) + torch.trace(c2)) - 2 * cross
    got = frechet_distance(m1, c1, m2, c2)
    assert got == pytest.approx(exact, rel=1e-10)
    assert frechet_distance(m2, c2, m1, c1) == pytest.approx(exact, rel=1e-10)  # symmetric


def test_fitted_to_samples_it_approaches_the_closed_form() -> None:
    """200k draws of each of two 2-D Gaussians: the fitted distance is the closed form within 2%."""
    c1, c2 = spd(2, 4), spd(2, 5)
    m1, m2 = torch.tensor([1.0, 1.0], dtype=F64), torch.tensor([-0.5, 0.0], dtype=F64)
    g = torch.Generator().manual_seed(6)
    n = 200_000
    a = m1 + torch.randn(n, 2, generator=g, dtype=F64) @ torch.linalg.cholesky(c1).T
    b = m2 + torch.randn(n, 2, generator=g, dtype=F64) @ torch.linalg.cholesky(c2).T
    exact = frechet_distance(m1, c1, m2, c2)
    assert frechet_of(a, b) == pytest.approx(exact, rel=0.02)


def test_features_are_the_heads_input_and_bad_input_is_refused() -> None:
    net = NoisyClassifier((1, 8, 8), 3, 8, (1, 2), 1).eval()
    x = torch.randn(5, 1, 8, 8)
    f = classifier_features(net, x.double(), batch=2)
    assert f.shape == (5, 16)
    with torch.no_grad():
        torch.testing.assert_close(net.head(f.float()), net(x, torch.zeros(5, dtype=torch.long)))
    with pytest.raises(ThermodiffError):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))
    with pytest.raises(ThermodiffError):
        frechet_of(torch.zeros(1, 2), torch.zeros(4, 2))
