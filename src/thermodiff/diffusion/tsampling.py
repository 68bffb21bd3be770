"""Importance sampling of the step t in the stochastic bound: less variance in the training loss.

The training loss estimates sum_t KL_t by KL_t / P(t) with one t ~ P per example (bound_stochastic).
Any P > 0 keeps it unbiased; its variance, sum_t E[KL_t^2] / P(t) - (sum_t E KL_t)^2, is smallest for
P(t) proportional to sqrt(E[KL_t^2]) (Nichol & Dhariwal 2021, sec. 3.3: improved-diffusion's
LossSecondMomentResampler). E[KL_t^2] is tracked per t by a bias-corrected exponential moving
average of the KL values training draws anyway; a uniform share keeps every t drawn and bounds the
weight 1 / P(t). Until every t has been drawn `warmup` times, P is uniform.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class SecondMomentTSampler:
    """P(t) over t = 2..T (index 0 is t = 2) proportional to sqrt(E[KL_t^2]), mixed with uniform."""

    def __init__(self, T: int, uniform: float = 0.1, decay: float = 0.99, warmup: int = 10):
        if T < 2 or not 0.0 < uniform <= 1.0 or not 0.0 <= decay < 1.0 or warmup < 1:
            raise ValueError(f"bad sampler settings T={T} uniform={uniform} decay={decay} warmup={warmup}")
        self.T, self.uniform, self.decay, self.warmup = T, float(uniform), float(decay), int(warmup)
        self.m2 = torch.zeros(T - 1, dtype=torch.float64)  # EMA of KL_t^2, not yet bias-corrected
        self.count = torch.zeros(T - 1, dtype=torch.float64)  # draws of each t so far

    def probs(self, device: torch.device | str | None = None) -> Tensor:
        """(T - 1,) float64 probabilities of t = 2..T; uniform until every t has `warmup` draws."""
        n = self.T - 1
        if bool((self.count < self.warmup).any()):
            return torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
        rms = (self.m2 / -torch.expm1(self.count * torch.log(torch.tensor(self.decay)))).sqrt()
        if not bool(rms.sum() > 0):
            return torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
        p = (1.0 - self.uniform) * rms / rms.sum() + self.uniform / n
        return (p / p.sum()).to(device)

    @torch.no_grad()
    def update(self, t: Tensor, kl: Tensor, reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Record a batch: t (B,) in 2..T and KL_t per example (B,) in nats, the KL itself, NOT divided
        by P(t). With several processes each holding a shard, pass `reduce` = an all-reduce (sum) of
        a tensor so that every rank applies the same update and draws the same t."""
        idx = (t.detach() - 2).long().cpu()
        stats = torch.zeros(2, self.T - 1, dtype=torch.float64)
        stats[0].index_add_(0, idx, kl.detach().to(torch.float64).cpu() ** 2)
        stats[1].index_add_(0, idx, torch.ones(idx.numel(), dtype=torch.float64))
        if reduce is not None:
            stats = reduce(stats)
        sq, n = stats[0], stats[1]
        hit = n > 0
        keep = self.decay ** n[hit]  # n draws of t in one batch: n EMA steps toward their mean
        self.m2[hit] = keep * self.m2[hit] + (1.0 - keep) * sq[hit] / n[hit]
        self.count += n

    def state_dict(self) -> dict[str, Tensor]:
        return {"m2": self.m2.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state["m2"].shape != self.m2.shape:
            raise ValueError(f"sampler state has {state['m2'].numel() + 1} steps, expected {self.T}")
        self.m2 = state["m2"].to(torch.float64).clone()
        self.count = state["count"].to(torch.float64).clone()


def variance_ratio(m2: Tensor, probs: Tensor, m1: Tensor) -> float:
    """Var of KL_t / P(t) under `probs` divided by its Var under uniform P, from per-t moments
    m1 = E KL_t and m2 = E KL_t^2 (index 0 is t = 2): the sample-size factor importance sampling buys."""
    n = m2.numel()
    total = m1.sum()
    var_uniform = n * m2.sum() - total**2
    var_probs = (m2 / probs).sum() - total**2
    return float(var_probs / var_uniform)
