"""Ancestral sampling from the reverse chain as a generator of states; sample() drains it.

Conditioning is a list of multipliers r (multipliers.py), each tilting one reverse step:
`r(step, x_t, t) -> step` (P §2.5, App. C); a multiplier that does not fit the model's step type is
refused before the chain runs (pairing.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from thermodiff import progress
from thermodiff.data.units import Units
from thermodiff.diffusion.bound import ModelFn, step_type_of
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.kernel import Kernel
from thermodiff.diffusion.steps import Step
from thermodiff.errors import ThermodiffError
from thermodiff.model.args import (
    check_count,
    check_device,
    check_finite,
    check_generator,
    check_shape,
    check_tensor,
)
from thermodiff.model.memory import check_sampling_fits
from thermodiff.run.checkpoint import check_writable
from thermodiff.sampling.multipliers import DataBox
from thermodiff.sampling.pairing import Multiplier, check_pairing

if TYPE_CHECKING:
    from thermodiff.data import DataSpec, Scaling
    from thermodiff.model.assemble import DiffusionModel

# (kernel, model_fn, x_t, t, t's value) -> the step x_{t-1} is drawn from: a sampler's rule (reverse_step's
# signature; reverse_step itself is the ancestral rule, ddim.DDIMStep is DDIM's)
StepRule = Callable[[Kernel, ModelFn, Tensor, Tensor, int], Step]

__all__ = ["Multiplier", "data_box", "p_sample_loop_progressive", "sample", "sample_grid"]


def p_sample_loop_progressive(
    kernel: Kernel,
    model_fn: ModelFn,
    x_T: Tensor,
    generator: torch.Generator | None = None,
    multipliers: Sequence[Multiplier] = (),
    t_start: int | None = None,
    rule: StepRule | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """Yield (t, x_t) for t = t_start..0: x_{t-1} ~ p(x_{t-1}|x_t) tilted by every multiplier;
    below kernel.t_first (the paper's last step x_0 ~ p(x_0|x_1)) the reverse step is the fixed
    reversal of the forward step (P App. B.2). `rule` makes each step before the multipliers tilt it:
    None is the model's own step (reverse_step), ddim.DDIMStep is DDIM's. A multiplier that does not
    fit model_fn's step type is refused here, at the call, before any step runs."""
    check_pairing(step_type_of(kernel, model_fn), multipliers)
    return _chain(kernel, model_fn, x_T, generator, multipliers, t_start, rule)


@torch.no_grad()
def _chain(
    kernel: Kernel,
    model_fn: ModelFn,
    x_T: Tensor,
    generator: torch.Generator | None,
    multipliers: Sequence[Multiplier],
    t_start: int | None,
    rule: StepRule | None,
) -> Iterator[tuple[int, Tensor]]:
    x = x_T.to(torch.float64)
    t_start = kernel.T if t_start is None else t_start
    yield t_start, x
    ticks = progress.bar(t_start, f"sample {x.shape[0]}")
    rule = reverse_step if rule is None else rule
    for step in range(t_start, 0, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        p = rule(kernel, model_fn, x, t, step)
        for r in multipliers:
            p = r(p, x, t)
        x = kernel.sample_from(p, generator)
        if ticks is not None:
            ticks.update(1)
            if step == 1:
                ticks.close()
        yield step - 1, x


def reverse_step(kernel: Kernel, model_fn: ModelFn, x: Tensor, t: Tensor, step: int) -> Step:
    """p(x_{t-1} | x_t) in float64: the model's, or below kernel.t_first the fixed reversal of the
    forward step (P App. B.2). `step` is t's value, known to the caller (no device sync)."""
    p = kernel.equilibrium_reversal(x, t) if step < kernel.t_first else model_fn(x, t)
    return p.to(torch.float64)


def sample(
    kernel: Kernel,
    model_fn: ModelFn,
    shape: tuple[int, ...],
    n: int,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    multipliers: Sequence[Multiplier] = (),
    x_T: Tensor | None = None,
    rule: StepRule | None = None,
) -> Tensor:
    """n samples x_0 from the model (model space, float64), from x_T ~ pi unless x_T is given
    (the paper starts denoising at x_T = y and inpainting at noise with the known pixels set).
    `kernel` and `model_fn` may be a respaced chain's (DiffusionModel.chain); `rule`: as in
    p_sample_loop_progressive (e.g. ddim.DDIMStep). Arguments are checked first (ThermodiffError), the
    memory the chain needs is estimated (model/memory.py: ResourceError), and samples that come out NaN
    or infinite raise NonFiniteError instead of being returned."""
    _check_chain(kernel, model_fn)
    shape = check_shape(shape)
    if x_T is None:
        n, device = check_count("n", n), check_device(device)
    else:
        x_T = check_tensor("x_T", x_T, shape)
        n, device = x_T.shape[0], x_T.device
    check_generator(generator, device)
    check_pairing(step_type_of(kernel, model_fn), multipliers)  # before the probe calls the network
    check_sampling_fits(model_fn, kernel.T, shape, n, device)
    if x_T is None:
        x_T = kernel.prior_sample((n, *shape), generator=generator, device=device)
    states = p_sample_loop_progressive(kernel, model_fn, x_T, generator, multipliers, None, rule)
    return check_finite(f"sampling {n} examples", deque(states, maxlen=1)[0][1])


def _check_chain(kernel: Kernel, model_fn: ModelFn) -> None:
    """A Kernel and a callable model_fn (a DiffusionModel's model_fn, or chain_of's)."""
    if not isinstance(kernel, Kernel):
        raise ThermodiffError(
            f"kernel must be a thermodiff Kernel (model.kernel()), not {type(kernel).__name__}"
        )
    if not callable(model_fn):
        raise ThermodiffError(
            f"model_fn must be callable (model.model_fn(kernel)), not {type(model_fn).__name__}"
        )


def data_box(model: DiffusionModel, units: Units) -> list[Multiplier]:
    """[DataBox] keeping predicted 8-bit images in 0..255 (model space, units.box); [] for other data.
    A respaced or DDIM chain rebinds it to its own steps (Chain.adapt)."""
    if not isinstance(units, Units):
        raise ThermodiffError(
            f"units must be a run's Units (load_run(...).units), not {type(units).__name__}"
        )
    box = units.box()
    if box is None:
        return []
    kernel = model.kernel()
    return [DataBox(kernel, *box)] if isinstance(kernel, GaussianKernel) else []


@torch.no_grad()
def sample_grid(
    model: DiffusionModel,
    spec: DataSpec,
    scaling: Scaling,
    path,
    n: int = 16,
    seed: int = 0,
    device="cpu",
    net=None,
):
    """n samples of an image model as one PNG grid in [0, 1], drawn as `thermodiff sample --seed` draws
    them (predicted x_0 kept in 0..255, data_box); `net` (e.g. the EMA copy) runs in eval mode with its
    own seeded generator, so a training run's random stream is left untouched."""
    from thermodiff.plots.draw import image_grid

    if len(spec.shape) != 3:
        raise ThermodiffError(f"sample_grid draws images; this model's data have shape {spec.shape}")
    n, seed, device = (
        check_count("n", n),
        check_count("seed", seed, -(2**63), 2**64 - 1),
        check_device(device),
    )
    path = check_writable(path)
    net = model.net if net is None else net
    was_training = net.training
    net.eval()
    try:
        gen = torch.Generator(device).manual_seed(seed)
        kernel = model.kernel()
        units = Units(spec, scaling)
        mults = data_box(model, units)
        x = sample(kernel, model.model_fn(kernel, net), spec.shape, n, gen, device, mults)
    finally:
        net.train(was_training)
    return image_grid(units.model_to_pixels(x.cpu()).float(), path)
