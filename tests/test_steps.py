"""Typed reverse steps and the Kernel protocol: both kernels implement it, every parameterization returns
the step type it declares, a full-covariance step's KL is the closed form, and a multiplier that does not
fit the model's step is refused once, before any network call, with a one-line error."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_tiny_cfg

from thermodiff.config import load_toml
from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.kernel import KERNELS, Kernel
from thermodiff.diffusion.reverse import make_reverse
from thermodiff.diffusion.schedules import binomial_betas, paper_betas
from thermodiff.diffusion.steps import BernoulliStep, FullGaussianStep, GaussianStep
from thermodiff.errors import ThermodiffError
from thermodiff.model.assemble import build_model
from thermodiff.sampling.ancestral import p_sample_loop_progressive, sample
from thermodiff.sampling.multipliers import (
    BernoulliMask,
    BernoulliObservation,
    ClassifierGuidance,
    DataBox,
    GaussianObservation,
    LogDensityGradient,
    Mask,
)
from thermodiff.sampling.tasks import denoise, inpaint

F64 = torch.float64


def test_both_kernels_implement_the_protocol_and_are_registered() -> None:
    gauss, binom = GaussianKernel(paper_betas(10, 1e-3)), BinomialKernel(binomial_betas(10), 0.2)
    assert isinstance(gauss, Kernel) and isinstance(binom, Kernel)
    assert KERNELS == {"gaussian": GaussianKernel, "binomial": BinomialKernel}
    assert all(KERNELS[k.name] is type(k) for k in (gauss, binom))
    assert gauss.step_types == (GaussianStep, FullGaussianStep) and binom.step_types == (BernoulliStep,)
    built = KERNELS["binomial"].build(binomial_betas(10), 0.3, True)
    assert (built.p_bar, built.t_first) == (0.3, 1)
    assert isinstance(KERNELS["gaussian"].build(paper_betas(10, 1e-3), 0.3, False), GaussianKernel)
    # the step types each kernel's own reversal returns are the first it takes
    t, x = torch.full((3,), 4), torch.zeros(3, 2, dtype=F64)
    for k in (gauss, binom):
        assert type(k.equilibrium_reversal(x, t)) is k.step_types[0]


REVERSES = [
    ("gaussian", "paper", "learned", GaussianStep),
    ("gaussian", "eps", "small", GaussianStep),
    ("gaussian", "eps", "large", GaussianStep),
    ("gaussian", "eps", "learned", GaussianStep),
    ("gaussian", "eps", "learned_range", GaussianStep),
    ("gaussian", "eps", "full", FullGaussianStep),
    ("binomial", "paper", "learned", BernoulliStep),
    ("binomial", "bernoulli", "learned", BernoulliStep),
    ("binomial", "offset", "learned", BernoulliStep),
]


@pytest.mark.parametrize(("kernel", "param", "variance", "want"), REVERSES)
def test_reverse_returns_its_declared_step_type(kernel: str, param: str, variance: str, want: type) -> None:
    rev = make_reverse(kernel, param, variance)
    k = (
        GaussianKernel(paper_betas(10, 1e-3))
        if kernel == "gaussian"
        else BinomialKernel(binomial_betas(10), 0.2)
    )
    d, g = 3, torch.Generator().manual_seed(0)
    raw = torch.randn(4, rev.out_channels((d,)), generator=g, dtype=F64).clamp(-0.9, 0.9)
    x_t = torch.randn(4, d, generator=g, dtype=F64)
    if kernel == "binomial":
        x_t = (x_t > 0).to(F64)
    step = rev.p_params(k, raw, x_t, torch.full((4,), 5))
    assert rev.step_type is want and type(step) is want
    if want is FullGaussianStep:
        assert step.mean.shape == (4, d) and step.scale_tril.shape == (4, d, d)
        assert torch.equal(step.scale_tril, step.scale_tril.tril())
    elif want is GaussianStep:
        assert step.mean.shape == step.logvar.shape == (4, d)
    else:
        assert step.logit.shape == (4, d)


def test_full_step_kl_is_the_closed_form() -> None:
    """KL(N(m1, diag v1) || N(m2, L L^T)) = (tr(S2^-1 S1) + dm^T S2^-1 dm - d + log det S2 - log det S1) / 2,
    written out here for d = 2 with L = [[a, 0], [c, b]]; a diagonal L equals the elementwise KL's sum."""
    k = GaussianKernel(paper_betas(10, 1e-3))
    m1, v1 = torch.tensor([[0.3, -0.2]], dtype=F64), torch.tensor([[0.5, 1.7]], dtype=F64)
    m2, (a, b, c) = torch.tensor([[-0.1, 0.4]], dtype=F64), (0.8, 1.3, 0.6)
    L = torch.tensor([[[a, 0.0], [c, b]]], dtype=F64)
    q = GaussianStep(m1, torch.log(v1))
    got = k.kl(q, FullGaussianStep(m2, L))
    assert got.shape == (1, 1)
    s11, s12, s22 = a * a, a * c, c * c + b * b  # S2 = L L^T
    det = s11 * s22 - s12 * s12
    i11, i12, i22 = s22 / det, -s12 / det, s11 / det
    dm = (m2 - m1)[0].tolist()
    tr = i11 * v1[0, 0].item() + i22 * v1[0, 1].item()
    quad = i11 * dm[0] ** 2 + 2 * i12 * dm[0] * dm[1] + i22 * dm[1] ** 2
    want = 0.5 * (tr + quad - 2 + math.log(det) - math.log(v1[0, 0].item() * v1[0, 1].item()))
    assert got.item() == pytest.approx(want, rel=1e-12)
    diag = torch.diag_embed(torch.tensor([[a, b]], dtype=F64))
    elementwise = k.kl(q, GaussianStep(m2, torch.log(torch.tensor([[a * a, b * b]], dtype=F64))))
    assert k.kl(q, FullGaussianStep(m2, diag)).item() == pytest.approx(elementwise.sum().item(), rel=1e-12)


def test_bernoulli_step_kl_is_the_closed_form() -> None:
    """KL(Bern(q) || Bern(sigmoid(l))) = q log(q / p) + (1 - q) log((1 - q) / (1 - p)), p = sigmoid(l)."""
    from thermodiff.diffusion.steps import BernoulliProb

    k = BinomialKernel(binomial_betas(10), 0.2)
    q, logit = 0.3, -0.7
    p = 1 / (1 + math.exp(-logit))
    want = q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))
    got = k.kl(BernoulliProb(torch.tensor([q], dtype=F64)), BernoulliStep(torch.tensor([logit], dtype=F64)))
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_every_multiplier_declares_its_step_type() -> None:
    gaussian = (GaussianObservation, Mask, DataBox, LogDensityGradient, ClassifierGuidance)
    assert all(m.accepts is GaussianStep for m in gaussian)
    assert BernoulliObservation.accepts is BernoulliStep and BernoulliMask.accepts is BernoulliStep


class Counting:
    """Counts the network's calls (a forward hook on the model's net)."""

    def __init__(self, net: torch.nn.Module):
        self.calls = 0
        net.register_forward_hook(self.hook)

    def hook(self, *_) -> None:
        self.calls += 1


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_mismatched_multiplier_is_refused_before_any_network_call() -> None:
    # any multiplier on a full-covariance model (swiss_roll: variance = full)
    model = build_model(make_tiny_cfg(), (2,))
    assert model.reverse.step_type is FullGaussianStep
    count, kernel = Counting(model.net), model.kernel()
    fn = model.model_fn(kernel)
    y = torch.zeros(5, 2, dtype=F64)
    with pytest.raises(ThermodiffError) as err:
        p_sample_loop_progressive(kernel, fn, y, multipliers=[GaussianObservation(y, 0.3)])  # at the call
    assert one_line(err) == "conditioning needs a diagonal reverse covariance (not variance = full)"
    with pytest.raises(ThermodiffError, match="diagonal reverse covariance"):
        denoise(model, y, 0.3)
    assert count.calls == 0
    assert sample(kernel, fn, (2,), 5).shape == (5, 2) and count.calls > 0  # no multiplier: it runs
    # a Gaussian multiplier on a binomial model, and a Bernoulli one on a Gaussian model
    over = ["diffusion.T=10", "model.hidden=16", "diffusion.parameterization=offset"]
    bits = build_model(load_toml("heartbeat", over), (20,), 0.2)
    count, kernel = Counting(bits.net), bits.kernel()
    x = torch.zeros(3, 20, dtype=F64)
    with pytest.raises(ThermodiffError) as err:
        sample(kernel, bits.model_fn(kernel), (20,), 3, multipliers=[Mask(x, torch.ones(20))])
    assert one_line(err) == "Mask multiplies a GaussianStep; this model's reverse step is a BernoulliStep"
    with pytest.raises(ThermodiffError, match="needs a Gaussian kernel"):
        denoise(bits, x, 0.3)
    assert count.calls == 0
    assert inpaint(bits, x, torch.ones(3, 20)).shape == (3, 20) and count.calls > 0  # BernoulliMask: fits
    gauss = GaussianKernel(paper_betas(10, 1e-3))
    with pytest.raises(ThermodiffError) as err:
        sample(
            gauss,
            gauss.equilibrium_reversal,
            (2,),
            3,
            multipliers=[BernoulliObservation(torch.full((2,), 0.3))],
        )
    assert "BernoulliObservation multiplies a BernoulliStep" in one_line(err)


def test_undeclared_multiplier_is_refused() -> None:
    gauss = GaussianKernel(paper_betas(10, 1e-3))
    with pytest.raises(ThermodiffError) as err:
        sample(gauss, gauss.equilibrium_reversal, (2,), 3, multipliers=[lambda step, x, t: step])
    assert "multiplies no step type" in one_line(err)
