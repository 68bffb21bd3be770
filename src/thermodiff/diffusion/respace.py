"""Respaced chains: the steps s_1 < ... < s_K kept from a trained chain of T steps form a diffusion model
of K steps in their own right (iDDPM §4 "respacing"; DDIM §4.2), with the composed forward kernel
q(x_{s_i} | x_{s_{i-1}}): Gaussian with 1 - beta'_i = alpha_bar_{s_i} / alpha_bar_{s_{i-1}}, binomial with
the same composed flip rate (both kernels compose by multiplying 1 - beta). The bound code then computes
K of the respaced chain exactly; the network is called at the original step s_i (`timesteps`).

A binomial network's output is a probability p(x_{s-1} = 1 | x_s) of the step it was trained on, with no
beta in it to swap for the composed one; it is read as what it is for the optimal network, the mixture
sum_{x_0} q(x_{s-1} | x_s, x_0) q(x_0 | x_s) of the two per-bit posteriors (each bit's kernel sees only
its own x_0), which fixes q(x_0 = 1 | x_s), and the composed step takes the same mixture of its own
posteriors q(x_{s_{i-1}} | x_s, x_0) (RespacedBinomialKernel.reread): exact wherever the network is.

Step 1, the paper's fixed first reverse step (P App. B.2), is always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.steps import at
from thermodiff.errors import ThermodiffError

Spacing = str | int | Sequence[int]


def _sections(T: int, counts: list[int]) -> list[int]:
    """iDDPM's space_timesteps: T split into len(counts) equal sections, each with counts[i] steps
    evenly spaced from its first step to its last (steps 1..T here, 0..T-1 there)."""
    size, extra = divmod(T, len(counts))
    start, kept = 0, []
    for i, count in enumerate(counts):
        n = size + (1 if i < extra else 0)
        if not 1 <= count <= n:
            raise ThermodiffError(f"a section of {n} steps cannot keep {count} steps (T = {T})")
        stride = (n - 1) / (count - 1) if count > 1 else 1
        kept += [start + round(j * stride) + 1 for j in range(count)]
        start += n
    return kept


def space_timesteps(T: int, spacing: Spacing) -> tuple[int, ...]:
    """The kept steps s_1 < ... < s_K in 1..T for a spacing: N (N steps evenly spaced from 1 to T),
    "a,b,c" (iDDPM's sections), "ddimN" (iDDPM's DDIM stride: 1, 1 + k, ..., N steps, not always
    reaching T), "list:s1,s2,..." or a sequence of ints (those steps); step 1 is always added."""
    if isinstance(spacing, str):
        text = spacing.strip().lower()
        try:
            if text.startswith("list:"):
                return space_timesteps(T, [int(v) for v in text[5:].split(",")])
            if text.startswith("ddim"):
                n = int(text[4:])
                stride = next((k for k in range(1, T + 1) if len(range(0, T, k)) == n), None)
                if stride is None:
                    raise ThermodiffError(f"no stride gives exactly {n} steps of {T} (ddim{n})")
                return tuple(s + 1 for s in range(0, T, stride))
            counts = [int(v) for v in text.split(",")]
        except ValueError:
            raise ThermodiffError(
                f"steps {spacing!r}: expected N, 'a,b,c' sections, 'ddimN' or 'list:s1,s2,...'"
            ) from None
        return tuple(_sections(T, counts))
    if isinstance(spacing, int):
        return tuple(_sections(T, [spacing]))
    kept = sorted({1, *(int(s) for s in spacing)})
    if kept[0] < 1 or kept[-1] > T:
        raise ThermodiffError(f"kept steps must lie in 1..{T}, got {kept[0]}..{kept[-1]}")
    return tuple(kept)


def respaced_betas(betas: Tensor, kept: Sequence[int]) -> Tensor:
    """(K + 1,) betas of the chain 0 -> s_1 -> ... -> s_K: 1 - beta'_i = alpha_bar_{s_i} / alpha_bar_{s_{i-1}}
    (iDDPM §4), in log space (beta_T = 1 gives beta' = 1); a kept step whose predecessor is kept too
    keeps its own beta bit for bit, so keeping every step gives the original table exactly."""
    idx = torch.as_tensor(list(kept), dtype=torch.long, device=betas.device)
    prev = torch.cat([idx.new_zeros(1), idx[:-1]])
    log_alpha_bar = torch.cumsum(torch.log1p(-betas), 0)
    composed = -torch.expm1(log_alpha_bar[idx] - log_alpha_bar[prev])
    out = torch.where(idx - prev == 1, betas[idx], composed)
    return torch.cat([betas[:1], out])


class RespacedBinomialKernel(BinomialKernel):
    """The composed binomial kernel of the kept steps, with the chain it was cut from (`source`) and the
    original step of each of its steps (`timesteps`), for reading a network's step against it."""

    def __init__(self, betas: Tensor, source: BinomialKernel, timesteps: Tensor):
        super().__init__(betas, source.p_bar, source.learned_first_step)
        self.source, self.timesteps = source, timesteps.to(self.betas.device)
        gaps = torch.diff(self.timesteps, prepend=self.timesteps[:1])
        self.skips = (gaps > 1).to(torch.float64)  # 1 at the steps that compose several

    def to(self, device: torch.device | str) -> RespacedBinomialKernel:
        if self.betas.device == torch.device(device):
            return self
        return RespacedBinomialKernel(self.betas.to(device), self.source.to(device), self.timesteps)

    def reread(self, logit: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """logit p(x_{s_{i-1}} = 1 | x_{s_i}) from the network's logit p(x_{s_i - 1} = 1 | x_{s_i}) at the
        composed step i = t: f = B + pi (A - B), A, B the step's posteriors given x_0 = 1, 0 (P §2.4.1),
        solved for pi = q(x_0 = 1 | x_s) (clamped to [0, 1]), then B' + pi (A' - B') with the composed
        step's posteriors; steps whose predecessor is kept are returned as they are (bit for bit)."""
        s = self.timesteps[t]
        x = x_t.to(torch.float64)
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        a, b = (self.source.q_posterior(v, x, s).prob for v in (one, zero))
        pi = ((torch.sigmoid(logit) - b) / (a - b)).clamp(0.0, 1.0)
        a2, b2 = (self.q_posterior(v, x, t).prob for v in (one, zero))
        f = b2 + pi * (a2 - b2)
        composed = torch.log(f) - torch.log1p(-f)
        return torch.where(at(self.skips, t, x) > 0, composed, logit)


@dataclass(frozen=True)
class Respacing:
    """Kept steps s_1..s_K of a chain of T steps; `timesteps[i]` = s_i is what the network sees at step i."""

    T: int
    kept: tuple[int, ...]

    @classmethod
    def of(cls, T: int, spacing: Spacing) -> Respacing:
        """The respacing of a chain of T steps described by `spacing` (space_timesteps)."""
        return cls(T, space_timesteps(T, spacing))

    @property
    def K(self) -> int:
        """The number of steps of the respaced chain."""
        return len(self.kept)

    @property
    def full(self) -> bool:
        """Whether every step is kept (the respaced chain is the original one, bit for bit)."""
        return self.kept == tuple(range(1, self.T + 1))

    def timesteps(self, device: torch.device | str | None = None) -> Tensor:
        """(K + 1,) long: [0, s_1, ..., s_K], the original step of each respaced step."""
        return torch.tensor([0, *self.kept], dtype=torch.long, device=device)

    def kernel(self, kernel: GaussianKernel | BinomialKernel) -> GaussianKernel | BinomialKernel:
        """The composed forward kernel of the kept steps: itself a kernel of K steps."""
        if kernel.T != self.T:
            raise ThermodiffError(f"a respacing of T = {self.T} steps applied to a chain of {kernel.T}")
        betas = respaced_betas(kernel.betas, self.kept)
        if isinstance(kernel, BinomialKernel):
            return RespacedBinomialKernel(betas, kernel, self.timesteps(betas.device))
        return GaussianKernel(betas)
