"""Assemble schedule + kernel + reverse parameterization + network from a config (one small bundle)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from thermodiff.config import Config
from thermodiff.diffusion.bound import ModelFn
from thermodiff.diffusion.kernel import KERNELS, Kernel
from thermodiff.diffusion.respace import Respacing, Spacing
from thermodiff.diffusion.reverse import EpsReverse, Reverse, make_reverse
from thermodiff.diffusion.schedules import Schedule, make_schedule
from thermodiff.diffusion.steps import Step
from thermodiff.model.fast import FastPath
from thermodiff.nets import build_net
from thermodiff.nets.imported import check_raw_width


@dataclass
class DiffusionModel:
    """What a run trains and loads: the schedule (maybe learned), the reverse map, the network."""

    schedule: Schedule
    reverse: Reverse
    net: nn.Module
    kernel_name: str
    p_bar: float = 0.5
    learned_first_step: bool = False  # binomial: p(x_0|x_1) from the network (diffusion.first_step)
    fast: FastPath = field(default_factory=FastPath)  # GPU precision/layout/compile/graphs (fast.py)

    def kernel(self) -> Kernel:
        """The forward kernel at the schedule's current betas (differentiable when learned)."""
        return KERNELS[self.kernel_name].build(self.schedule.betas(), self.p_bar, self.learned_first_step)

    def chain(
        self, steps: Spacing | None = None, net: nn.Module | None = None, graphed: bool = False
    ) -> tuple[Kernel, ModelFn]:
        """(kernel, model_fn) of the full chain, or of the respaced chain keeping `steps` (respace.py:
        the composed kernel; the network sees the original steps)."""
        kernel = self.kernel()
        if steps is None:
            return kernel, self.model_fn(kernel, net, graphed)
        respacing = Respacing.of(kernel.T, steps)
        if respacing.full:
            return kernel, self.model_fn(kernel, net, graphed)
        respaced = respacing.kernel(kernel)
        return respaced, self.model_fn(respaced, net, graphed, respacing.timesteps(kernel.betas.device))

    def model_fn(
        self,
        kernel: Kernel,
        net: nn.Module | None = None,
        graphed: bool = False,
        timesteps: Tensor | None = None,
    ) -> ModelFn:
        """(x_t float64, t) -> the step p(x_{t-1}|x_t), of type self.reverse.step_type (declared on the
        fn as `step_type`, so that samplers check multipliers before it runs); the network runs in its
        own dtype (under bf16 autocast on a GPU when train.precision = bf16) and the step comes back in
        x_t's dtype. graphed: a fixed-kernel sampling/evaluation fn, compiled and replayed as a CUDA
        graph per batch shape when the fast path says so (no effect on a CPU). timesteps: the original
        step of each step of a respaced kernel (Respacing.timesteps), what the network sees."""
        net = self.net if net is None else net
        dtype = next(net.parameters()).dtype
        if graphed:
            net = self.fast.compiled(net)

        def raw(x_t: Tensor, t: Tensor) -> Tensor:
            return self.fast.forward(net, x_t.to(dtype), t if timesteps is None else timesteps[t])

        def fn(x_t: Tensor, t: Tensor) -> Step:
            return self.reverse.p_params(kernel, raw(x_t, t), x_t, t)

        out = self.fast.graphed_fn(fn) if graphed else fn
        out.step_type = self.reverse.step_type
        if isinstance(self.reverse, EpsReverse) and out is fn:  # DDIM reads it (a graph replays only fn)
            out.eps = lambda x_t, t: self.reverse.eps(raw(x_t, t), x_t)
        return out


def build_model(
    cfg: Config, shape: tuple[int, ...], p_bar: float = 0.5, net: nn.Module | None = None
) -> DiffusionModel:
    """Config -> DiffusionModel with a freshly initialised network (seeded by train.seed), or around
    `net`, any (x_t, t) -> raw module with reverse.out_channels(shape) outputs along dim 1."""
    d = cfg.diffusion
    schedule_name = "binomial" if d.kernel == "binomial" else d.schedule
    schedule = make_schedule(schedule_name, d.T, d.beta_1, d.beta_max, d.learned_init)
    reverse = make_reverse(d.kernel, d.parameterization, d.variance)
    torch.manual_seed(cfg.train.seed)
    if net is None:
        net = build_net(cfg.model, shape, d.T, reverse.out_channels(shape), seed=cfg.train.seed)
    else:
        check_raw_width(net, shape, d.T, reverse.out_channels(shape), type(net).__name__)
    learned_first = d.first_step == "learned"
    return DiffusionModel(
        schedule, reverse, net, d.kernel, p_bar, learned_first, FastPath.from_config(cfg.train)
    )


def raw_width(cfg: Config, shape: tuple[int, ...]) -> int:
    """The raw outputs along dim 1 that cfg's reverse parameterization asks a network for, on data of
    `shape`: a network (x_t, t) -> raw returns (B, raw_width, *shape[1:])."""
    d = cfg.diffusion
    return make_reverse(d.kernel, d.parameterization, d.variance).out_channels(tuple(shape))


def dims(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
