"""The Fréchet distance between two sets of features, each summarised by its mean and covariance
(Dowson & Landau 1982; FID, Heusel et al. 2017), in the feature space of the project's own classifier:
d^2 = |m1 - m2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)."""

from __future__ import annotations

import torch
from torch import Tensor

from thermodiff.errors import ThermodiffError


def sqrtm_psd(a: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix, by eigh (eigenvalues
    below zero, rounding only, clamped to 0)."""
    a = (a + a.T) / 2
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(m1: Tensor, c1: Tensor, m2: Tensor, c2: Tensor) -> float:
    """d^2 between N(m1, c1) and N(m2, c2): tr (c1 c2)^1/2 taken as tr (c1^1/2 c2 c1^1/2)^1/2, the square
    root of a symmetric matrix (the same eigenvalues as c1 c2, Dowson & Landau 1982)."""
    m1, c1, m2, c2 = (v.to(torch.float64) for v in (m1, c1, m2, c2))
    if c1.shape != c2.shape or m1.shape != m2.shape or c1.shape != (m1.numel(), m1.numel()):
        raise ThermodiffError(
            f"Fréchet distance of mismatched statistics: {tuple(c1.shape)}, {tuple(c2.shape)}"
        )
    root = sqrtm_psd(c1)
    cross = torch.trace(sqrtm_psd(root @ c2 @ root))
    return float(((m1 - m2) ** 2).sum() + torch.trace(c1) + torch.trace(c2) - 2 * cross)


def feature_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, covariance with the n - 1 divisor) of (n, d) features, float64."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ThermodiffError(f"feature statistics need (n >= 2, d) features, got {tuple(features.shape)}")
    f = features.to(torch.float64)
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def frechet_of(a: Tensor, b: Tensor) -> float:
    """The Fréchet distance between the Gaussians fitted to the (n, d) feature sets a and b."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


@torch.no_grad()
def classifier_features(net: torch.nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    """(n, d) features of x (model space): the input of the classifier's linear head (its pooled
    penultimate layer), the network called at t = 0 as a clean classifier is."""
    head = getattr(net, "head", None)
    if not isinstance(head, torch.nn.Linear):
        raise ThermodiffError("classifier features need a network whose last layer is a Linear `head`")
    seen: list[Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
    dtype = next(net.parameters()).dtype
    try:
        for xb in x.split(batch):
            net(xb.to(dtype), torch.zeros(xb.shape[0], dtype=torch.long, device=xb.device))
    finally:
        hook.remove()
    return torch.cat(seen).to(torch.float64)
