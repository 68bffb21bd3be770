"""Interpolation through the noisy state at step t (Ho et al. 2020, DDPM 4.4)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
from torch import Tensor

from thermodiff.diffusion.bound import ModelFn, step_type_of
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.kernel import Kernel
from thermodiff.errors import ShapeError, ThermodiffError
from thermodiff.model.args import as_numbers, check_count, check_finite, check_tensor
from thermodiff.model.memory import check_sampling_fits
from thermodiff.sampling.ancestral import Multiplier, StepRule, p_sample_loop_progressive
from thermodiff.sampling.ddim import ddim_encode
from thermodiff.sampling.pairing import check_pairing

ENCODERS = ("forward", "ddim")  # x -> x_t: q(x_t | x) with shared noise (DDPM 4.4), or DDIM at eta = 0


def interpolate(
    kernel: Kernel,
    model_fn: ModelFn,
    x_a: Tensor,
    x_b: Tensor,
    t: int,
    lambdas: Sequence[float] | Tensor,
    generator: torch.Generator | None = None,
    multipliers: Sequence[Multiplier] = (),
    rule: StepRule | None = None,
    encoder: str = "forward",
) -> Tensor:
    """Encode x_a, x_b to step t with one shared noise, mix (1-l) x_t + l x_t', decode from t (DDPM 4.4).

    x_a, x_b: (1, *S) in model space. Returns (len(lambdas), *S) float64. The encoding noise is drawn
    once and used for both inputs and every lambda, so the mix is q_sample((1-l) x_a + l x_b, t, eps);
    every lambda's reverse chain then restarts from the same generator state, so only lambda varies.
    t = 0 returns the plain linear mix. Gaussian kernels only: a mix of bits is not a binomial state.
    encoder "ddim": x_a, x_b are encoded by the deterministic DDIM chain instead (DDIM §5.3; no noise),
    and `rule` (e.g. DDIMStep) is the step map of the decoding chain.
    """
    if encoder not in ENCODERS:
        raise ThermodiffError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
    x_a, x_b = check_tensor("x_a", x_a, one=True), check_tensor("x_b", x_b, one=True)
    if tuple(x_a.shape) != tuple(x_b.shape):
        raise ShapeError(f"x_a and x_b must have one shape; got {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    if not isinstance(kernel, GaussianKernel):
        raise ThermodiffError(
            f"interpolation needs a Gaussian kernel, got {getattr(kernel, 'name', kernel)!r}"
        )
    check_count("interpolation step t", t, 0, kernel.T)
    lam = as_numbers("lambdas", lambdas).to(x_a.device)
    if lam.dim() != 1 or not len(lam):
        raise ShapeError(f"lambdas must be a list of numbers, got shape {tuple(lam.shape)}")
    check_pairing(step_type_of(kernel, model_fn), multipliers)  # before the probe calls the network
    check_sampling_fits(model_fn, kernel.T, tuple(x_a.shape[1:]), 2, x_a.device)  # the model's shape
    x_a, x_b = x_a.to(torch.float64), x_b.to(torch.float64)
    if int(t) == 0:
        return check_finite("interpolating at step 0", torch.cat([(1 - v) * x_a + v * x_b for v in lam]))
    if generator is None:
        seed = int(torch.randint(2**62, ()))
        generator = torch.Generator(device=x_a.device).manual_seed(seed)
    steps = torch.full((1,), int(t), dtype=torch.long, device=x_a.device)
    if encoder == "ddim":
        x_t_a, x_t_b = (ddim_encode(kernel, model_fn, x, int(t)) for x in (x_a, x_b))
    else:
        noise = kernel.noise_like(x_a, generator)  # one eps for x_a, x_b and every lambda
        x_t_a, x_t_b = kernel.q_sample(x_a, steps, noise), kernel.q_sample(x_b, steps, noise)
    state = generator.get_state()
    out = []
    for v in lam:
        generator.set_state(state)  # the same reverse-chain noise for every lambda
        mixed = (1 - v) * x_t_a + v * x_t_b
        chain = p_sample_loop_progressive(kernel, model_fn, mixed, generator, multipliers, int(t), rule)
        out.append(deque(chain, maxlen=1)[0][1])
    return check_finite(f"interpolating through step {t}", torch.cat(out))
