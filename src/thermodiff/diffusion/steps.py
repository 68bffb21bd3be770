"""The parameters of one step of a chain, typed: what reverse.py makes of the network's raw output and
what kernels, bounds, samplers and multipliers take and return (P Table App.1).

Tensors are elementwise over the batch (B, ...) unless a field says otherwise; a step is immutable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TypeVar

import torch
from torch import Tensor

S = TypeVar("S", bound="Step")


def at(table: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """table[t] reshaped to broadcast against a batch `like` of shape (B, ...)."""
    return table.index_select(0, t.reshape(-1)).view(-1, *([1] * (like.dim() - 1)))


@dataclass(frozen=True)
class Step:
    """The base of every step type: its tensors, field by field."""

    def map(self: S, fn: Callable[[Tensor], Tensor]) -> S:
        """The same step type with fn applied to each field, in field order."""
        return type(self)(*(fn(getattr(self, f.name)) for f in fields(self)))

    def to(self: S, dtype: torch.dtype) -> S:
        """Each field cast to dtype (as Tensor.to); itself when every field has it already."""
        if all(getattr(self, f.name).dtype == dtype for f in fields(self)):
            return self
        return self.map(lambda v: v.to(dtype))


@dataclass(frozen=True)
class GaussianStep(Step):
    """N(mean, diag(exp(logvar))): f_mu and a diagonal f_Sigma (P Table App.1, eqs. 64-65; DDPM eq. 11)."""

    mean: Tensor
    logvar: Tensor


@dataclass(frozen=True)
class PointStep(Step):
    """delta(x_{t-1} - mean): a deterministic step, the Gaussian's limit sigma -> 0 (DDIM eq. 12 with eta =
    0); a sampler returns its mean and draws nothing."""

    mean: Tensor


@dataclass(frozen=True)
class FullGaussianStep(Step):
    """N(mean, L L^T) per example, L = scale_tril (B, d, d): a full covariance for vector data (iDDPM eq. 15
    on the diagonal, a learned lower triangle below it)."""

    mean: Tensor
    scale_tril: Tensor


@dataclass(frozen=True)
class BernoulliStep(Step):
    """Bernoulli(sigmoid(logit)) per bit: the binomial reverse step f_b (P Table App.1, §2.4.1)."""

    logit: Tensor


@dataclass(frozen=True)
class BernoulliProb(Step):
    """Bernoulli(prob) per bit: the posterior q(x_{t-1}|x_t,x_0) or marginal q(x_t|x_0) (P §2.4.1)."""

    prob: Tensor
