"""The chain a sampler runs: the full chain or a respaced one (iDDPM §4), drawn ancestrally or by DDIM."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from thermodiff.diffusion.bound import ModelFn
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.kernel import Kernel
from thermodiff.diffusion.respace import Respacing, Spacing
from thermodiff.errors import ThermodiffError
from thermodiff.sampling.ancestral import StepRule
from thermodiff.sampling.ddim import DDIMStep
from thermodiff.sampling.multipliers import ClassifierGuidance, DataBox, Mask
from thermodiff.sampling.pairing import Multiplier

if TYPE_CHECKING:
    from thermodiff.model.assemble import DiffusionModel

SAMPLERS = ("ancestral", "ddim")


@dataclass
class Chain:
    """What sample() takes: the kernel and model_fn (maybe respaced), the step rule (DDIM's, or None for
    the ancestral step), and the
    original step of each of its steps (for networks called outside model_fn: a guiding classifier)."""

    kernel: Kernel
    model_fn: ModelFn
    rule: StepRule | None
    timesteps: Tensor | None  # (K + 1,) original steps, or None for the full chain
    description: str  # e.g. "ancestral, 50 of 1000 steps"

    def original(self, t: Tensor) -> Tensor:
        """The original step of the chain's step t."""
        return t if self.timesteps is None else self.timesteps.to(t.device)[t]

    def adapt(self, multipliers: Sequence[Multiplier]) -> list[Multiplier]:
        """The multipliers rebound to this chain: a DataBox reads x_0 through its steps (DDIM's step
        when DDIM), a forward-schedule Mask follows its kernel, a guiding classifier sees the original
        steps; the rest tilt any step as they are, except DDIM's with eta = 0, a point that no r(x)
        can tilt (a DataBox or Mask only reads or sets x_0)."""
        out = []
        point = isinstance(self.rule, DDIMStep) and self.rule.eta == 0
        for r in multipliers:
            if point and not isinstance(r, (DataBox, Mask)):
                raise ThermodiffError(
                    f"{type(r).__name__} with --sampler ddim needs --eta > 0: r(x) cannot tilt a "
                    "deterministic step"
                )
            if isinstance(r, DataBox):
                r = DataBox(self.kernel if self.rule is None else self.rule, r.lo, r.hi)
            elif isinstance(r, Mask) and r.kernel is not None:
                r = copy.copy(r)
                r.kernel = self.kernel
            elif isinstance(r, ClassifierGuidance) and self.timesteps is not None:
                fn = r.log_prob_fn
                r = ClassifierGuidance(lambda x_t, t, fn=fn: fn(x_t, self.original(t)), r.scale)
            out.append(r)
        return out


def chain_of(
    model: DiffusionModel,
    steps: Spacing | None = None,
    sampler: str = "ancestral",
    eta: float = 0.0,
    net=None,
    graphed: bool = False,
) -> Chain:
    """The chain for `--steps` (None: all T) and `--sampler` (DDIM: Gaussian kernels, eta in [0, 1])."""
    if sampler not in SAMPLERS:
        raise ThermodiffError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    kernel, fn = model.chain(steps, net, graphed)
    T = model.schedule.T
    timesteps = None
    if kernel.T != T:
        timesteps = Respacing.of(T, steps).timesteps(kernel.betas.device)
    rule = None
    if sampler == "ddim":
        if not isinstance(kernel, GaussianKernel):
            raise ThermodiffError("--sampler ddim needs a Gaussian kernel (this run is binomial)")
        rule = DDIMStep(kernel, eta)
    what = f"DDIM (eta = {eta:g})" if sampler == "ddim" else "ancestral"
    return Chain(kernel, fn, rule, timesteps, f"{what}, {kernel.T} of {T} steps")
