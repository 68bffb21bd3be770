"""Assemble schedule + kernel + reverse parameterization + network from a config (one small bundle)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from thermodiff.config import Config
from thermodiff.diffusion.bound import ModelFn
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.reverse import make_reverse
from thermodiff.diffusion.schedules import Schedule, make_schedule
from thermodiff.nets import build_net


@dataclass
class DiffusionModel:
    """What a run trains and loads: the schedule (maybe learned), the reverse map, the network."""

    schedule: Schedule
    reverse: object
    net: nn.Module
    kernel_name: str
    p_bar: float = 0.5

    def kernel(self):
        """The forward kernel at the schedule's current betas (differentiable when learned)."""
        if self.kernel_name == "binomial":
            from thermodiff.diffusion.binomial import BinomialKernel

            return BinomialKernel(self.schedule.betas(), self.p_bar)
        return GaussianKernel(self.schedule.betas())

    def model_fn(self, kernel, net: nn.Module | None = None) -> ModelFn:
        """(x_t float64, t) -> params of p(x_{t-1}|x_t); the network runs in its own dtype."""
        net = self.net if net is None else net
        dtype = next(net.parameters()).dtype

        def fn(x_t: Tensor, t: Tensor):
            raw = net(x_t.to(dtype), t)
            return self.reverse.p_params(kernel, raw, x_t, t)

        return fn


def build_model(cfg: Config, shape: tuple[int, ...], p_bar: float = 0.5) -> DiffusionModel:
    """Config -> DiffusionModel with a freshly initialised network (seeded by train.seed)."""
    d = cfg.diffusion
    schedule_name = "binomial" if d.kernel == "binomial" else d.schedule
    parameterization = "bernoulli" if d.kernel == "binomial" else d.parameterization
    schedule = make_schedule(schedule_name, d.T, d.beta_1, d.beta_max, d.learned_init)
    reverse = make_reverse(parameterization, d.variance)
    torch.manual_seed(cfg.train.seed)
    net = build_net(cfg.model, shape, d.T, reverse.out_channels(shape), seed=cfg.train.seed)
    return DiffusionModel(schedule, reverse, net, d.kernel, p_bar)


def dims(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
