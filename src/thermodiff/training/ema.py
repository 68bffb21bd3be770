"""The moving average of the weights that evaluate and sample use by default, with a warm-up of its decay."""

from __future__ import annotations

import math

import torch


def ema_decay(ema: float, updates: int, warmup: bool = True) -> float:
    """The decay of the `updates`-th average update (1, 2, ...): min(ema, (1 + k) / (10 + k)) with
    warm-up, as TensorFlow's ExponentialMovingAverage(num_updates=k) and latent diffusion's LitEma do,
    so that early averages follow the weights; after k updates the initial weights keep the product of
    the decays, at most 10! (k + 1)! / (k + 10)! (2.2e-12 at k = 100)."""
    return min(ema, (1 + updates) / (10 + updates)) if warmup else ema


def ema_weight_of_start(ema: float, updates: int, warmup: bool = True) -> float:
    """The weight the initial parameters keep in the average after `updates` updates: prod of decays."""
    return math.prod(ema_decay(ema, k, warmup) for k in range(1, updates + 1))


@torch.no_grad()
def ema_update(ema: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * params, in place."""
    if ema and all(e.is_cuda and e.dtype == p.dtype for e, p in zip(ema, params, strict=True)):
        torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)  # GPU: a few kernels
        return
    for e, p in zip(ema, params, strict=True):
        e.lerp_(p.detach().to(e.dtype), 1 - decay)
