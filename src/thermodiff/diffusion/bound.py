"""The lower bound K on the log-likelihood, term by term (P eq. 14 and App. B).

    K = -sum_{t=2..T} E KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))      kl
        - KL(q(x_T|x_0) || pi)                                         prior
        + E_{q(x_1|x_0)} log p(x_0|x_1)                                edge (first reverse step fixed)

A kernel whose first reverse step is learned (kernel.t_first = 1; binary data, where
q(x_0|x_1,x_0) is a point mass and its KL is -log p(x_0|x_1)) moves the edge into the kl sum,
which then runs over t = 1..T, and its edge term is zero.

prior + edge = H_q(X_T|X_0) - H_q(X_1|X_0) + cross, where `cross` = log pi(x_0) + E log pi(x_T)
- E log pi(x_1) is exact per example and averages to the paper's -H_p(X_T) on data with unit
variance. All per-example values are in nats, summed over dimensions; to_bits converts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from thermodiff.diffusion.distributions import discretized_gaussian_log_likelihood
from thermodiff.diffusion.kernel import Kernel
from thermodiff.diffusion.steps import Step

ModelFn = Callable[[Tensor, Tensor], Step]  # (x_t, t) -> the step p(x_{t-1} | x_t)
LN2 = math.log(2.0)


def sum_dims(x: Tensor) -> Tensor:
    return x.flatten(1).sum(1)


def to_bits(nats: Tensor | float) -> Tensor | float:
    return nats / LN2


@dataclass
class BoundTerms:
    """Per-example terms of K, shape (B,), nats."""

    kl: Tensor  # sum over t = t_first..T of the KL terms (>= 0); an unbiased estimate when stochastic
    prior: Tensor  # -KL(q(x_T|x_0) || pi)
    edge: Tensor  # E log p(x_0 | x_1)
    entropy_T: Tensor  # H_q(X_T | X_0)
    entropy_1: Tensor  # H_q(X_1 | X_0)
    log_null: Tensor  # log pi(x_0): the data under the prior (L_null per example)

    @property
    def K(self) -> Tensor:
        return -self.kl + self.prior + self.edge

    @property
    def cross(self) -> Tensor:
        """The exact per-example replacement of the paper's -H_p(X_T)."""
        return self.prior + self.edge - self.entropy_T + self.entropy_1


def step_type_of(kernel: Kernel, model_fn: ModelFn) -> type[Step]:
    """The step type model_fn returns, known before it runs: as it declares in `step_type` (the model_fn of
    DiffusionModel does), else the kernel's diagonal step (what equilibrium_reversal returns)."""
    return getattr(model_fn, "step_type", kernel.step_types[0])


def kl_at(kernel: Kernel, model_fn: ModelFn, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) at x_t ~ q(x_t|x_0), per example, t >= t_first."""
    x_t = kernel.q_sample(x0, t, noise)
    q = kernel.q_posterior(x0, x_t, t)
    p = model_fn(x_t, t)  # float64 in; the model_fn casts for its network
    return sum_dims(kernel.kl(q, p.to(torch.float64)))


def _edge_terms(kernel: Kernel, x0: Tensor, kl: Tensor) -> BoundTerms:
    return BoundTerms(
        kl=kl,
        prior=sum_dims(kernel.prior_term(x0)),
        edge=sum_dims(kernel.edge_term(x0)),
        entropy_T=sum_dims(kernel.entropy_T(x0)),
        entropy_1=sum_dims(kernel.entropy_1(x0)),
        log_null=sum_dims(kernel.log_prior(x0)),
    )


def bound_exact(
    kernel: Kernel, model_fn: ModelFn, x0: Tensor, generator: torch.Generator | None = None
) -> tuple[BoundTerms, Tensor]:
    """K with every t = t_first..T evaluated (one x_t draw per t and example). Returns the terms and
    the per-step KL (T + 1, B) (rows below t_first are zero)."""
    x0 = x0.to(torch.float64)
    per_t = torch.zeros(kernel.T + 1, x0.shape[0], dtype=torch.float64, device=x0.device)
    for step in range(kernel.t_first, kernel.T + 1):
        t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
        per_t[step] = kl_at(kernel, model_fn, x0, t, kernel.noise_like(x0, generator))
    return _edge_terms(kernel, x0, per_t.sum(0)), per_t


def uniform_t_probs(kernel: Kernel, device: torch.device | str | None = None) -> Tensor:
    """P(t), indexed t = 0..T: uniform over the learned steps t_first..T, zero below."""
    probs = torch.zeros(kernel.T + 1, dtype=torch.float64, device=device)
    probs[kernel.t_first :] = 1.0 / (kernel.T + 1 - kernel.t_first)
    return probs


def draw_t(n: int, t_probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """n steps t drawn from t_probs (indexed t = 0..T)."""
    return torch.multinomial(t_probs.float(), n, replacement=True, generator=generator)


def bound_stochastic(
    kernel: Kernel,
    model_fn: ModelFn,
    x0: Tensor,
    generator: torch.Generator | None = None,
    t_probs: Tensor | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
) -> tuple[BoundTerms, Tensor]:
    """Unbiased estimate of K with one t per example, t ~ t_probs (indexed t = 0..T; uniform over
    t_first..T by default): kl = KL_t / P(t). `t` and `noise` may be given (drawn elsewhere);
    returns the terms and t (B,)."""
    x0 = x0.to(torch.float64)
    if t_probs is None:
        t_probs = uniform_t_probs(kernel, x0.device)
    if t is None:
        t = draw_t(x0.shape[0], t_probs, generator)
    if noise is None:
        noise = kernel.noise_like(x0, generator)
    kl = kl_at(kernel, model_fn, x0, t, noise.to(x0.dtype)) / t_probs[t]
    return _edge_terms(kernel, x0, kl), t


def discrete_edge(
    kernel: Kernel, x0: Tensor, noise: Tensor, bin_width: float, lo: Tensor, hi: Tensor
) -> Tensor:
    """E_{q(x_1|x_0)} log P(x_0|x_1) for x_0 on a grid (one x_1 draw): the fixed first reverse step
    N(sqrt(1-b1) x_1, b1) integrated over each bin, edge bins to +-inf (Ho et al. 2020 eq. 13)."""
    t1 = torch.ones(x0.shape[0], dtype=torch.long, device=x0.device)
    p = kernel.equilibrium_reversal(kernel.q_sample(x0, t1, noise), t1)
    return sum_dims(discretized_gaussian_log_likelihood(x0, p.mean, 0.5 * p.logvar, bin_width, lo, hi))


def mean_and_stderr(values: Tensor) -> tuple[float, float]:
    """Mean over examples and its standard error std / sqrt(n)."""
    n = values.numel()
    mean = values.mean().item()
    stderr = values.std(unbiased=True).item() / math.sqrt(n) if n > 1 else float("nan")
    return mean, stderr
