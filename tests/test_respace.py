"""Respaced chains (diffusion/respace.py, iDDPM §4) against analytic truths: the composed kernels'
marginals and one-step transitions, computed here by composing the original steps one at a time;
keeping every step reproduces the full chain bit for bit; the network sees the original steps."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_tiny_cfg

from thermodiff.diffusion import BinomialKernel, GaussianKernel, bound_exact
from thermodiff.diffusion.respace import Respacing, space_timesteps
from thermodiff.diffusion.schedules import binomial_betas, cosine_betas, linear_betas, paper_betas
from thermodiff.errors import ThermodiffError
from thermodiff.model.assemble import build_model
from thermodiff.sampling.ancestral import sample
from thermodiff.sampling.tasks import inpaint

T = 60
KEPT = (1, 2, 7, 20, 21, 44, 60)


def _gaussian_kernels():
    return [
        GaussianKernel(b) for b in (paper_betas(T, 1e-4), linear_betas(T, 1e-4, 0.2), cosine_betas(T, 1e-4))
    ]


@pytest.mark.parametrize("kernel", _gaussian_kernels(), ids=["paper", "linear", "cosine"])
def test_gaussian_composed_step_and_marginals(kernel: GaussianKernel) -> None:
    """x_s = m x_r + noise of variance v over the skipped steps (composed one at a time, in Python
    floats): the respaced step i has sqrt(1 - beta'_i) = m, beta'_i = v; its marginal is the original's."""
    r = Respacing(T, KEPT).kernel(kernel)
    betas = kernel.betas.tolist()
    prev = 0
    for i, s in enumerate(KEPT, start=1):
        m, v = 1.0, 0.0
        for u in range(prev + 1, s + 1):
            m, v = m * math.sqrt(1 - betas[u]), (1 - betas[u]) * v + betas[u]
        assert math.sqrt(1 - float(r.betas[i])) == pytest.approx(m, rel=1e-12)
        assert float(r.betas[i]) == pytest.approx(v, rel=1e-11)
        prev = s
    x0 = torch.linspace(-2, 2, 5, dtype=torch.float64)[:, None]
    for i, s in enumerate(KEPT, start=1):
        qi = r.q_mean_logvar(x0, torch.full((5,), i))
        qs = kernel.q_mean_logvar(x0, torch.full((5,), s))
        torch.testing.assert_close(qi.mean, qs.mean, rtol=1e-10, atol=1e-13)  # rounding of cumsum
        torch.testing.assert_close(qi.logvar, qs.logvar, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p_bar", [0.5, 0.2])
def test_binomial_composed_flip_rate_and_marginals(p_bar: float) -> None:
    """The product of the skipped steps' 2x2 transition matrices is the respaced step's matrix (the
    composed flip rate), including the last step whose beta_T = 1; marginals match at kept steps."""
    kernel = BinomialKernel(binomial_betas(T), p_bar)
    r = Respacing(T, KEPT).kernel(kernel)

    def matrix(beta: float) -> torch.Tensor:  # rows x_{t-1} = 0, 1; columns x_t = 0, 1
        return torch.tensor(
            [[1 - p_bar * beta, p_bar * beta], [(1 - p_bar) * beta, 1 - (1 - p_bar) * beta]],
            dtype=torch.float64,
        )

    prev = 0
    for i, s in enumerate(KEPT, start=1):
        composed = torch.eye(2, dtype=torch.float64)
        for u in range(prev + 1, s + 1):
            composed = composed @ matrix(float(kernel.betas[u]))
        torch.testing.assert_close(matrix(float(r.betas[i])), composed, rtol=1e-12, atol=1e-14)
        prev = s
    x0 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    for i, s in enumerate(KEPT, start=1):
        torch.testing.assert_close(
            r.q_prob(x0, torch.full((2,), i)).prob, kernel.q_prob(x0, torch.full((2,), s)).prob
        )


def test_spacings_follow_iddpm_notation() -> None:
    ddim = space_timesteps(1000, "ddim50")
    assert len(ddim) == 50 and ddim[:3] == (1, 21, 41) and ddim[-1] == 981  # the stride misses T
    even = space_timesteps(1000, "50")
    assert len(even) == 50 and even[0] == 1 and even[-1] == 1000
    sections = space_timesteps(1000, "10,10,30")
    assert len(sections) == 50 and sections[9] == 334 and sections[10] == 335 and sections[-1] == 1000
    assert space_timesteps(100, [50, 100]) == (1, 50, 100)  # step 1 is always kept
    assert space_timesteps(10, "list:3,7") == (1, 3, 7)
    assert Respacing.of(10, 10).full and not Respacing.of(10, 9).full
    for bad in ("abc", "ddim7", "0", "2000", "list:0,5", "list:5,11"):
        with pytest.raises(ThermodiffError):
            space_timesteps(10, bad)


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("diffusion.parameterization=eps",),
        ("diffusion.kernel=binomial", "data.name=heartbeat", "diffusion.parameterization=offset"),
        ("diffusion.kernel=binomial", "data.name=heartbeat", "diffusion.parameterization=paper"),
    ],
    ids=["paper", "eps", "binomial", "binomial_paper"],
)
def test_every_step_kept_reproduces_the_full_chain_bit_for_bit(extra: tuple[str, ...]) -> None:
    """The respaced kernel (not the shortcut of chain()) with every step kept, the same seed."""
    cfg = make_tiny_cfg(*extra)
    shape = (20,) if "data.name=heartbeat" in extra else (2,)
    model = build_model(cfg, shape, p_bar=0.3)
    full = model.kernel()
    respacing = Respacing(full.T, tuple(range(1, full.T + 1)))
    kernel = respacing.kernel(full)
    assert torch.equal(kernel.betas, full.betas)
    fn = model.model_fn(kernel, timesteps=respacing.timesteps())
    a = sample(full, model.model_fn(full), shape, 64, torch.Generator().manual_seed(3))
    b = sample(kernel, fn, shape, 64, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_the_network_sees_the_original_steps() -> None:
    model = build_model(make_tiny_cfg("diffusion.parameterization=eps"), (2,))
    seen = []
    net = model.net
    model.net = lambda x, t: (seen.append(t.tolist()), net(x, t))[1]  # type: ignore[assignment]
    model.net.parameters = net.parameters  # type: ignore[attr-defined]
    kernel, fn = model.chain("list:4,10")
    assert kernel.T == 3
    sample(kernel, fn, (2,), 2, torch.Generator().manual_seed(0))
    # the memory probe (model/memory.py) first passes batches of 1 and 2 at the chain's first step
    assert seen == [[10], [10, 10], [10, 10], [4, 4]]  # respaced steps 3, 2; 1 is the fixed reversal


def test_respaced_equilibrium_reversal_has_K_equal_to_L_null() -> None:
    """A respaced chain is a diffusion model: with data = pi and every reverse step the reversal of its
    composed forward step, the existing bound gives K - L_null = 0 (P App. B.2) up to Monte Carlo."""
    r = Respacing(T, KEPT).kernel(GaussianKernel(linear_betas(T, 1e-4, 0.2)))
    x0 = torch.randn(4000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    terms, _ = bound_exact(r, r.equilibrium_reversal, x0, torch.Generator().manual_seed(1))
    gap = terms.K - terms.log_null
    assert abs(float(gap.mean())) < 4 * float(gap.std()) / math.sqrt(gap.numel()) + 1e-9


def test_inpainting_on_a_respaced_chain_keeps_known_pixels_bit_exact() -> None:
    model = build_model(
        make_tiny_cfg("diffusion.parameterization=eps", "diffusion.variance=learned_range", "diffusion.T=30"),
        (2,),
    )
    values = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mask = torch.tensor([[True, False]]).expand(8, 2)
    for schedule in ("forward", "constant"):
        out = inpaint(model, values, mask, torch.Generator().manual_seed(1), schedule=schedule, steps=7)
        assert torch.equal(out[:, 0], values[:, 0]) and out[:, 1].isfinite().all()


def test_binomial_respaced_chain_samples_bits_and_has_a_finite_bound() -> None:
    cfg = make_tiny_cfg(
        "diffusion.kernel=binomial", "data.name=heartbeat", "diffusion.parameterization=offset"
    )
    model = build_model(cfg, (20,), p_bar=0.3)
    kernel, fn = model.chain(4)
    assert kernel.T == 4 and float(kernel.betas[-1]) == 1.0  # beta_T = 1 composes to 1
    x = sample(kernel, fn, (20,), 16, torch.Generator().manual_seed(0))
    assert bool(((x == 0) | (x == 1)).all())
    terms, _ = bound_exact(kernel, fn, x, torch.Generator().manual_seed(1))
    assert bool(torch.isfinite(terms.K).all())
