"""The binomial reverse step on a respaced chain (diffusion/respace.py, RespacedBinomialKernel.reread)
against the exact reverse of a small correlated data set: q(x_0) over 3 bits given in full, every
quantity enumerated here from 2x2 transition matrices. Given the network that outputs the true per-bit
p(x_{s-1} = 1 | x_s) of the original step s, the composed step must give the true p(x_{s'} = 1 | x_s)
of the respaced chain (s' the previous kept step), for both binomial parameterizations."""

from __future__ import annotations

import itertools

import pytest
import torch

from thermodiff.diffusion import BinomialKernel
from thermodiff.diffusion.respace import Respacing
from thermodiff.diffusion.reverse import BernoulliReverse
from thermodiff.diffusion.schedules import binomial_betas

F64 = torch.float64
T, P_BAR = 12, 0.3
KEPT = (1, 2, 5, 9, 12)
STATES = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)), dtype=F64)  # (8, 3)
P_X0 = torch.tensor([0.30, 0.02, 0.05, 0.13, 0.04, 0.16, 0.01, 0.29], dtype=F64)  # correlated bits


def flip(beta: float) -> torch.Tensor:
    """q(x_t | x_{t-1}): rows x_{t-1} = 0, 1; columns x_t = 0, 1."""
    return torch.tensor(
        [[1 - P_BAR * beta, P_BAR * beta], [(1 - P_BAR) * beta, 1 - (1 - P_BAR) * beta]], dtype=F64
    )


def product(betas: list[float], lo: int, hi: int) -> torch.Tensor:
    """q(x_hi | x_lo) = the product of the steps lo + 1 .. hi."""
    m = torch.eye(2, dtype=F64)
    for u in range(lo + 1, hi + 1):
        m = m @ flip(betas[u])
    return m


def true_reverse(betas: list[float], lo: int, hi: int, x_hi: torch.Tensor) -> torch.Tensor:
    """Per bit q(x_lo = 1 | x_hi) for the data P_X0, by enumeration over x_0: (B, 3)."""
    to_lo, lo_to_hi = product(betas, 0, lo), product(betas, lo, hi)
    out = torch.empty_like(x_hi)
    for b, x in enumerate(x_hi.long()):
        # weight of x_0: P(x_0) prod_j q(x_hi_j | x0_j)
        w = P_X0 * torch.stack([(to_lo @ lo_to_hi)[s.long(), x].prod() for s in STATES])
        for j in range(3):
            # q(x_lo_j = 1 | x_hi_j, x0_j) for each x_0
            num = to_lo[STATES[:, j].long(), 1] * lo_to_hi[1, x[j]]
            den = num + to_lo[STATES[:, j].long(), 0] * lo_to_hi[0, x[j]]
            out[b, j] = (w * num / den).sum() / w.sum()
    return out


@pytest.mark.parametrize("offset", [False, True], ids=["paper", "offset"])
def test_composed_step_of_the_exact_network_is_the_exact_composed_reverse(offset: bool) -> None:
    kernel = BinomialKernel(binomial_betas(T), P_BAR)
    betas = kernel.betas.tolist()
    respaced = Respacing(T, KEPT).kernel(kernel)
    x = STATES.repeat(2, 1)  # every x_s, twice
    reverse = BernoulliReverse(offset=offset)
    for i in range(2, len(KEPT) + 1):  # step 1 is the fixed reversal
        s, s_prev = KEPT[i - 1], KEPT[i - 2]
        t = torch.full((x.shape[0],), i)
        raw = torch.logit(true_reverse(betas, s - 1, s, x))  # the optimal network at step s
        if offset:
            raw = raw - kernel.equilibrium_reversal(x, torch.full_like(t, s)).logit
        got = torch.sigmoid(reverse.p_params(respaced, raw, x, t).logit)
        torch.testing.assert_close(got, true_reverse(betas, s_prev, s, x), rtol=1e-10, atol=1e-12)
        if s - s_prev == 1:  # a step whose predecessor is kept: the network's output as it is
            assert torch.equal(
                reverse.p_params(respaced, raw, x, t).logit,
                reverse.p_params(kernel, raw, x, torch.full_like(t, s)).logit,
            )


def test_the_composed_kernel_keeps_its_source_on_any_device() -> None:
    kernel = BinomialKernel(binomial_betas(T), P_BAR)
    respaced = Respacing(T, KEPT).kernel(kernel)
    assert respaced.to("cpu") is respaced
    assert respaced.T == len(KEPT) and respaced.source is kernel
    assert respaced.timesteps.tolist() == [0, *KEPT]
