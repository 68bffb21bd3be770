"""Multipliers r(x): each tilts a reverse step p(x_{t-1}|x_t) to p(x_{t-1}|x_t) r(x_{t-1}) (P 2.5, App. C).

A multiplier is called by the sampler as `step = r(step, x_t, t)` for the step producing x_{t-1}, and
declares in `accepts` the step type it tilts and returns: GaussianStep (float64) for the Gaussian kernel,
BernoulliStep (the logit of P(x_{t-1} = 1 | x_t)) for the binomial one; t is a (B,) long tensor. The
sampler refuses a wrong pairing once, before the chain runs (pairing.py). Multipliers compose left to
right; a delta factor (Mask, BernoulliMask) stays exact under any later multiplier, since its variance is
0 / its logit infinite.

Schedules (P §2.5, App. C): "constant" uses r(x_{t-1}) = r(x_0) at every step (the paper's experiments);
"annealed" uses r(x^{(t)}) = r(x^{(0)})^{(T-t)/T}, the tilt that leaves p~(x_T) = pi. A Mask may also
follow the forward chain ("forward"): known coordinates of x_{t-1} are drawn from q(x_{t-1} | x_0 =
value), which is the delta itself at the last step (Song et al. 2021 replacement; RePaint). The step called
with t produces x_{t-1}, whose marginal carries exponent w = (T - (t - 1)) / T: 1/T at the first step
(t = T), exactly 1 at the last (t = 1, producing x_0). Neither schedule is the exact posterior in
general (the tilt of every intermediate marginal compounds); both are exact per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from thermodiff.diffusion.binomial import bernoulli_product
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.steps import BernoulliStep, GaussianStep, PointStep
from thermodiff.errors import ThermodiffError
from thermodiff.model.args import as_numbers, check_callable, check_number

SCHEDULES = ("constant", "annealed")


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _check_shape(name: str, got: torch.Size, sample: tuple, batched: bool = True) -> None:
    """`got` must be S, (1, *S) or (B, *S) for samples of shape (B, *S); else ThermodiffError.

    `sample` is (B, *S) when batched (at call time), else S alone (at construction, B unknown)."""
    got, inner = tuple(got), tuple(sample[1:] if batched else sample)
    lead_ok = (1, sample[0]) if batched else None
    ok = got == inner or (
        len(got) == len(inner) + 1 and got[1:] == inner and (lead_ok is None or got[0] in lead_ok)
    )
    if not ok:
        want = _fmt(sample) if batched else _fmt(("B", *inner))
        raise ThermodiffError(f"{name} shape {_fmt(got)} does not match sample shape {want} or {_fmt(inner)}")


def _pair(values: Tensor, mask: Tensor) -> None:
    """values and mask must broadcast against each other (each is checked against x at call time)."""
    try:
        torch.broadcast_shapes(values.shape, mask.shape)
    except RuntimeError:
        raise ThermodiffError(
            f"values shape {_fmt(values.shape)} and mask shape {_fmt(mask.shape)} do not broadcast"
        ) from None


def _weight(schedule: str, T: int | None, t: Tensor, like: Tensor) -> Tensor | float:
    """Exponent of r for the marginal of x_{t-1}: 1 (constant) or (T - (t - 1)) / T (annealed, P 2.5)."""
    if schedule == "constant":
        return 1.0
    if not t.is_cuda and (int(t.max()) > T or int(t.min()) < 1):  # on a GPU: no per-step host sync
        raise ThermodiffError(f"annealed multiplier built for T={T} called at step {int(t.max())}")
    w = (T - (t.to(torch.float64) - 1)) / T
    return w.to(like.device).reshape(-1, *([1] * (like.dim() - 1)))


def _check_schedule(schedule: str, T: int | None) -> None:
    if schedule not in SCHEDULES:
        raise ThermodiffError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    if schedule == "annealed" and (isinstance(T, bool) or not isinstance(T, int) or T < 1):
        raise ThermodiffError("the annealed schedule needs T, the number of diffusion steps (>= 1)")


def _as_mask(mask: Tensor) -> Tensor:
    """A 0/1 (or bool) tensor -> bool; any other value is an error."""
    mask = mask if isinstance(mask, Tensor) else as_numbers("mask", mask, finite=False)
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ThermodiffError("mask must contain only 0 and 1 (1 = known coordinate)")
        mask = mask == 1
    return mask


class _Data:
    """A data-shaped tensor (y, values, mask) checked against the sample shape, moved to its device."""

    def __init__(self, name: str, tensor: Tensor, shape: tuple[int, ...] | None):
        self.name, self.tensor = name, tensor
        if shape is not None:
            _check_shape(name, tensor.shape, tuple(shape), batched=False)

    def like(self, x: Tensor) -> Tensor:
        _check_shape(self.name, self.tensor.shape, tuple(x.shape))
        if self.tensor.device != x.device:
            self.tensor = self.tensor.to(x.device)
        return self.tensor


def _grad(fn: Callable[..., Tensor], at: Tensor, *args: Tensor, what: str) -> Tensor:
    """d sum_b fn(at)_b / d at, under enable_grad (sampling runs under no_grad); 0 if fn ignores `at`."""
    with torch.enable_grad():
        leaf = at.detach().requires_grad_(True)
        out = fn(leaf, *args)
        if tuple(out.shape) != (at.shape[0],):
            raise ThermodiffError(f"{what} must return shape {_fmt(at.shape[:1])}, got {_fmt(out.shape)}")
        if not out.requires_grad:
            return torch.zeros_like(at)
        (g,) = torch.autograd.grad(out.sum(), leaf, allow_unused=True)
    return torch.zeros_like(at) if g is None else g.to(at.dtype)


class GaussianObservation:
    """r(x) = N(y; x, noise_std^2) per element, multiplied exactly: precisions add (P App. C; denoising)."""

    accepts = GaussianStep

    def __init__(
        self,
        y: Tensor,
        noise_std: float | Tensor,
        schedule: str = "constant",
        T: int | None = None,
        shape: tuple[int, ...] | None = None,
    ):
        _check_schedule(schedule, T)
        std = as_numbers("noise_std", noise_std, finite=False)
        if not bool((std > 0).all()):
            raise ThermodiffError(f"noise_std must be > 0, got {noise_std}")
        self.y = _Data("y", as_numbers("y", y), shape)
        self.inv_var = std**-2  # observation precision 1 / noise_std^2 (0 when noise_std = inf)
        self.schedule, self.T = schedule, T

    def __call__(self, step: GaussianStep, x_t: Tensor, t: Tensor) -> GaussianStep:
        mean, logvar = step.mean, step.logvar
        y, w = self.y.like(mean), _weight(self.schedule, self.T, t, mean)
        if self.inv_var.device != mean.device:  # once, not a host-to-device copy per step
            self.inv_var = self.inv_var.to(mean.device)
        k = torch.exp(logvar) * (w * self.inv_var)  # var / var_obs: 0 where var = 0
        # 1/var' = 1/var + w/sd^2 and mean' = var' (mean/var + w y/sd^2), written as a gain (finite at var=0)
        return GaussianStep(mean + k / (1 + k) * (y - mean), logvar - torch.log1p(k))


class Mask:
    """r = delta(x_i - value_i) on known coordinates (mask == 1), constant elsewhere (P 2.5; inpainting).

    Known coordinates get mean = value and logvar = -inf: the sampler's mean + exp(0.5 logvar) noise is
    then value + 0 * noise, bit-exact in float64 (the noise is finite). With a Gaussian `kernel`
    ("forward" schedule) they get q(x_{t-1} | x_0 = value) instead, so the network sees noise levels it
    was trained on; at the last step that is the delta, and the output is still bit-exact."""

    accepts = GaussianStep

    def __init__(
        self,
        values: Tensor,
        mask: Tensor,
        shape: tuple[int, ...] | None = None,
        kernel: GaussianKernel | None = None,
    ):
        mask = _as_mask(mask)
        values = as_numbers("values", values, finite=False)  # NaN allowed where unknown
        _pair(values, mask)
        if not bool(torch.where(mask, values, 0.0).isfinite().all()):
            raise ThermodiffError("values at known coordinates must be finite")
        self.values, self.mask = _Data("values", values, shape), _Data("mask", mask, shape)
        self.kernel = kernel

    def __call__(self, step: GaussianStep | PointStep, x_t: Tensor, t: Tensor) -> GaussianStep | PointStep:
        """Known coordinates replaced; a PointStep (DDIM, eta = 0) stays one unless q puts noise there."""
        mean, point = step.mean, isinstance(step, PointStep)
        known, values = self.mask.like(mean), self.values.like(mean).expand_as(mean)
        if self.kernel is None and point:
            return PointStep(torch.where(known, values, mean))
        if self.kernel is None:
            q = GaussianStep(values, torch.full_like(mean, float("-inf")))
        else:  # sqrt(alpha_bar_0) = 1, log(1 - alpha_bar_0) = -inf: the delta at t = 1
            self.kernel = self.kernel.to(mean.device)  # moved once; then itself
            q = self.kernel.q_mean_logvar(values, t - 1)
        logvar = torch.full_like(mean, float("-inf")) if point else step.logvar
        return GaussianStep(torch.where(known, q.mean, mean), torch.where(known, q.logvar, logvar))

    def fill(self, x: Tensor) -> Tensor:
        """x with known coordinates set to their values: the paper's inpainting start state x_T (P 2.5)."""
        return torch.where(self.mask.like(x), self.values.like(x).to(x.dtype), x)


class DataBox:
    """Keep the predicted x_0 in the data's range [lo, hi] (DDPM's clip_denoised): x_0 read off the
    step's mean through q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, .), clamped, and the mean rebuilt.
    A projection, not a product with r; put it first in the list so that deltas after it stay exact."""

    accepts = GaussianStep

    def __init__(self, kernel: GaussianKernel, lo: Tensor, hi: Tensor):
        self.kernel = kernel
        self.lo, self.hi = (torch.as_tensor(v, dtype=torch.float64) for v in (lo, hi))

    def __call__(self, step: GaussianStep | PointStep, x_t: Tensor, t: Tensor) -> GaussianStep | PointStep:
        mean = step.mean  # its variance (or its being a point) is kept
        if self.lo.device != mean.device:  # once, not at every step
            self.kernel = self.kernel.to(mean.device)
            self.lo, self.hi = self.lo.to(mean.device), self.hi.to(mean.device)
        c0, ct = self.kernel.posterior_coefficients(t, mean)  # c0 > 0; ct = 0 at t = 1
        ct_xt = ct * x_t.to(mean.dtype)
        x0 = ((mean - ct_xt) / c0).clamp(self.lo, self.hi)
        return dataclasses.replace(step, mean=c0 * x0 + ct_xt)


class LogDensityGradient:
    """Any differentiable log r: mean + scale w Sigma grad log r at the mean, first order (P eqs. 52-61)."""

    accepts = GaussianStep

    def __init__(
        self,
        log_r: Callable[[Tensor], Tensor],
        scale: float = 1.0,
        schedule: str = "constant",
        T: int | None = None,
    ):
        _check_schedule(schedule, T)
        check_callable("log_r", log_r)
        self.log_r, self.scale = log_r, check_number("scale", scale, "(-inf, inf)")
        self.schedule, self.T = schedule, T

    def __call__(self, step: GaussianStep, x_t: Tensor, t: Tensor) -> GaussianStep:
        mean, logvar = step.mean, step.logvar
        g = _grad(self.log_r, mean, what="log_r")  # (B, ...) grad log r at mu
        w = _weight(self.schedule, self.T, t, mean)
        return GaussianStep(mean + (self.scale * w) * torch.exp(logvar) * g, logvar)


class ClassifierGuidance:
    """mean + s Sigma grad_{x_t} log p(y | x_t, t), gradient at x_t (Dhariwal & Nichol 2021, Alg. 1)."""

    accepts = GaussianStep

    def __init__(self, log_prob_fn: Callable[[Tensor, Tensor], Tensor], scale: float = 1.0):
        check_callable("log_prob_fn", log_prob_fn)
        self.log_prob_fn, self.scale = log_prob_fn, check_number("scale", scale, "(-inf, inf)")

    def __call__(self, step: GaussianStep, x_t: Tensor, t: Tensor) -> GaussianStep:
        mean, logvar = step.mean, step.logvar
        g = _grad(self.log_prob_fn, x_t.to(mean.dtype), t, what="log_prob_fn")  # at x_t, not at mu
        return GaussianStep(mean + self.scale * torch.exp(logvar) * g, logvar)


class BernoulliObservation:
    """r(x_i = 1) = prob, multiplied exactly: c d / (c d + (1-c)(1-d)) in logit space (P Table App.1).

    Annealed, r^w is again Bernoulli with prob^w / (prob^w + (1-prob)^w) = sigmoid(w logit prob)."""

    accepts = BernoulliStep

    def __init__(
        self,
        prob: Tensor,
        schedule: str = "constant",
        T: int | None = None,
        shape: tuple[int, ...] | None = None,
    ):
        _check_schedule(schedule, T)
        prob = as_numbers("prob", prob, finite=False)
        if not bool(((prob > 0) & (prob < 1)).all()):
            raise ThermodiffError("prob must lie in (0, 1); use BernoulliMask for known bits")
        self.prob = _Data("prob", prob, shape)
        self.schedule, self.T = schedule, T

    def __call__(self, step: BernoulliStep, x_t: Tensor, t: Tensor) -> BernoulliStep:
        logit = step.logit
        prob = self.prob.like(logit)
        if self.schedule == "annealed":
            w = _weight(self.schedule, self.T, t, logit)
            prob = torch.sigmoid(w * (torch.log(prob) - torch.log1p(-prob)))
        return BernoulliStep(bernoulli_product(logit, prob))


class BernoulliMask(Mask):
    """r = delta on known bits (mask == 1): logit = +inf where value 1, -inf where 0 (P 2.5; inpainting)."""

    accepts = BernoulliStep

    def __init__(self, values: Tensor, mask: Tensor, shape: tuple[int, ...] | None = None):
        super().__init__(values, mask, shape)
        values, mask = self.values.tensor, self.mask.tensor
        if not bool(((values == 0) | (values == 1) | ~mask).all()):
            raise ThermodiffError("values at known bits must be 0 or 1")

    def __call__(self, step: BernoulliStep, x_t: Tensor, t: Tensor) -> BernoulliStep:
        logit = step.logit
        known, values = self.mask.like(logit), self.values.like(logit)
        inf = torch.where(values > 0.5, float("inf"), float("-inf")).to(logit.dtype)
        return BernoulliStep(torch.where(known, inf.expand_as(logit), logit))
