"""The two likelihood units of 8-bit images (DESIGN.md 2) against analytic truths, the Parzen estimate,
and a tiny image run end to end (train with sample grids, evaluate --json [--parzen], sample).

The reverse chain used for the analytic checks is the equilibrium reversal N(sqrt(1 - b_t) x_t, b_t) at
every step t >= 2: with it E[K | y] = log pi(y) exactly for continuous data (test_bound.py), and the
model's discrete distribution is known in closed form: x_1 ~ pi = N(0, I), then the fixed first step
N(sqrt(1 - b1) x_1, b1) integrated over each grey level's bin, i.e. N(0, 1) integrated over the bin
(edge bins to +-inf). With b1 -> 1 the bound's gap KL(q(x_1|x_0) || p(x_1|x_0)) is O(1 - b1).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_IMAGE_NET
from PIL import Image

from thermodiff import cli
from thermodiff.config import DataConfig
from thermodiff.data import Dataset, DataSpec, Scaling, dequantize, load_dataset
from thermodiff.data.images import image_dataset
from thermodiff.diffusion.distributions import discretized_gaussian_log_likelihood
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.schedules import Schedule, paper_betas
from thermodiff.errors import DataError
from thermodiff.evaluation.estimate import evaluate_bound
from thermodiff.evaluation.heldout import report
from thermodiff.evaluation.parzen import SIGMAS, choose_sigma, parzen_estimate, parzen_log_likelihood

F64 = torch.float64
LN2 = math.log(2.0)


class EquilibriumModel:
    """The reverse chain set to the equilibrium reversal at every step (what report() needs of a model)."""

    kernel_name = "gaussian"

    def __init__(self, betas: torch.Tensor):
        self.schedule = Schedule(betas)

    def kernel(self) -> GaussianKernel:
        return GaussianKernel(self.schedule.betas())

    def model_fn(self, kernel, net=None, graphed=False):
        return kernel.equilibrium_reversal


def b1_near_one() -> torch.Tensor:
    """T = 2, b1 = 1 - 1e-6: x_1 is almost pure noise, the model's bin masses are N(0, 1)'s."""
    return torch.tensor([0.0, 1.0 - 1e-6, 0.5], dtype=F64)


def bin_log_masses(scaling: Scaling, shape: tuple[int, ...]) -> torch.Tensor:
    """(256, *shape) log of N(0, 1)'s mass over each grey level's bin in model space, edges to +-inf."""
    k = torch.arange(256, dtype=F64).reshape(256, *([1] * len(shape))).expand(256, *shape)
    centre = scaling.apply(k.contiguous())
    half = scaling.scale / 2
    upper = torch.where(k == 255, torch.full_like(centre, math.inf), centre + half)
    lower = torch.where(k == 0, torch.full_like(centre, -math.inf), centre - half)
    return torch.log(torch.special.ndtr(upper) - torch.special.ndtr(lower))


def exact_nll_bits_per_dim(raw: torch.Tensor, log_mass: torch.Tensor) -> torch.Tensor:
    """Per example: -(1/d) sum_d log2 P_d(x_d) for uint8 images raw (N, *shape)."""
    lm = log_mass.unsqueeze(0).expand(raw.shape[0], *log_mass.shape)
    picked = lm.gather(1, raw.long().unsqueeze(1)).squeeze(1)
    return -picked.flatten(1).mean(1) / LN2


def uniform_images(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


# --- dequantization and the discretized decoder ------------------------------------------------------


def test_dequantization_width_is_one_grey_level() -> None:
    """dequantize adds U(-1/2, 1/2) grey level in model units (step = scale): mapped back to grey levels
    the noise lies in [-1/2, 1/2), spans it (max - min > 0.999 over 300k draws), has mean 0 and variance
    1/12 (within 4 SE of each)."""
    ds = image_dataset(uniform_images(3000, (1, 10, 10), 0), uniform_images(10, (1, 10, 10), 1))
    y = dequantize(ds.train, ds.scaling.scale, torch.Generator().manual_seed(2))
    noise = (ds.scaling.invert(y) - ds.scaling.invert(ds.train)).flatten()
    assert noise.min() >= -0.5 - 1e-9 and noise.max() < 0.5 + 1e-9
    assert noise.max() - noise.min() > 0.999
    n = noise.numel()
    assert abs(noise.mean().item()) < 4 * math.sqrt(1 / 12 / n)
    assert abs(noise.var().item() - 1 / 12) < 4 * math.sqrt(1 / 180 / n)  # Var(u^2) = 1/80 - 1/144


def test_discretized_decoder_sums_to_one_over_256_bins() -> None:
    """For every dimension, with its own lo/hi (per-dimension shift, as _grid_figures passes them) and
    any mean and width (inside, outside the range, far below and far above one bin), the probabilities
    of the 256 grey levels sum to 1 (1e-9)."""
    shape = (2, 3, 3)
    g = torch.Generator().manual_seed(3)
    scaling = Scaling(tuple((255 * torch.rand(18, generator=g, dtype=F64)).tolist()), 1 / 70.0)
    lo = scaling.apply(torch.zeros(1, *shape, dtype=F64))
    hi = scaling.apply(torch.full((1, *shape), 255.0, dtype=F64))
    grid = scaling.apply(torch.arange(256, dtype=F64).reshape(256, 1, 1, 1).expand(256, *shape).contiguous())
    for mean_scale, log_std in ((1.0, -6.0), (3.0, -2.0), (0.5, math.log(scaling.scale / 10)), (1.0, 1.0)):
        mean = mean_scale * torch.randn(1, *shape, generator=g, dtype=F64)
        log_scale = torch.full((1, *shape), log_std, dtype=F64)
        logp = discretized_gaussian_log_likelihood(grid, mean, log_scale, scaling.scale, lo, hi)
        total = torch.logsumexp(logp, dim=0).exp()
        assert torch.allclose(total, torch.ones_like(total), atol=1e-9), (mean_scale, log_std)


# --- bits/dim on the grid: analytic values ------------------------------------------------------------


def test_nll_bits_per_dim_of_a_known_distribution_is_its_entropy() -> None:
    """Pixels i.i.d. from P = N(127.5, 40^2) integrated over grey-level bins (edges to +-inf), scaling
    fixed to (127.5, 1/40): the b1 -> 1 equilibrium model IS P, so nll_bits_per_dim is an unbiased
    estimate of -log2 P per pixel. Checks: it equals the exact -log2 P of the same test images (paired,
    1e-4 bits/dim: the bound's gap is O(1 - b1) = 1e-6 nats), and the entropy H(P) = 7.34 bits from
    its definition within 4 SE of the test-set mean."""
    shape, n = (1, 4, 4), 2000
    scaling = Scaling((127.5,) * 16, 1 / 40.0)
    log_mass = bin_log_masses(scaling, shape)  # the same P for every pixel
    p = log_mass[:, 0, 0, 0].exp()
    assert abs(p.sum().item() - 1) < 1e-12
    entropy = -(p * p.log()).sum().item() / LN2
    raw = torch.multinomial(p.float(), n * 16, replacement=True, generator=torch.Generator().manual_seed(4))
    raw = raw.reshape(n, *shape).to(torch.uint8)
    ds = Dataset(
        scaling.apply(raw.to(F64)),
        scaling.apply(raw.to(F64)),
        DataSpec(shape, "image8", "bits/pixel"),
        scaling,
    )
    r = report(EquilibriumModel(b1_near_one()), ds, n, exact=True, batch=1000)
    exact = exact_nll_bits_per_dim(raw, log_mass)
    assert r["nll_bits_per_dim"] == pytest.approx(exact.mean().item(), abs=1e-4)
    se = exact.std().item() / math.sqrt(n)
    assert abs(r["nll_bits_per_dim"] - entropy) < 4 * se, (r["nll_bits_per_dim"], entropy, se)
    assert abs(entropy - (math.log2(40 * math.sqrt(2 * math.pi * math.e)))) < 0.05  # a Gaussian's


def test_uniform_pixels_cost_at_least_8_bits_and_match_the_cross_entropy() -> None:
    """i.i.d. uniform pixels (entropy 8 bits/dim) through image_dataset (fitted scaling): the b1 -> 1
    equilibrium model's nll_bits_per_dim equals the exact cross-entropy -log2 P of the test images
    (1e-4 bits/dim), which is >= 8 by Gibbs' inequality (its model is N(0, 1) bin masses, not uniform)."""
    shape, n = (1, 4, 4), 1500
    ds = image_dataset(uniform_images(4000, shape, 5), uniform_images(n, shape, 6))
    r = report(EquilibriumModel(b1_near_one()), ds, n, exact=True, batch=1500)
    raw = ds.scaling.invert(ds.test).round().to(torch.uint8)
    exact = exact_nll_bits_per_dim(raw, bin_log_masses(ds.scaling, shape))
    assert r["nll_bits_per_dim"] == pytest.approx(exact.mean().item(), abs=1e-4)
    assert r["nll_bits_per_dim"] > 8.0


def test_nll_with_beta_1_far_below_a_grey_level_has_its_closed_form() -> None:
    """With sqrt(b1) = 1e-4 << half a grey level (~0.007), the discretized first step puts all its mass
    in the right bin (log P = 0 to 1e-12), so -K_disc = -log pi(y) + E log N(y; sqrt(1-b1) x_1, b1),
    per dimension 0.5 (1 - b1)(y^2 - 1) - 0.5 log b1 in expectation (equilibrium reversal, T = 8).
    Tolerance 4 SE of the paired Monte Carlo difference; the bound is then far above 8 bits/dim: it
    pays log2(s / sqrt(2 pi e b1)) for resolving far below the grid."""
    shape, n = (1, 3, 3), 3000
    ds = image_dataset(uniform_images(4000, shape, 7), uniform_images(n, shape, 8))
    b1 = 1e-8
    model = EquilibriumModel(paper_betas(8, b1))
    s = ds.scaling
    lo, hi = s.apply(torch.zeros(1, *shape, dtype=F64)), s.apply(torch.full((1, *shape), 255.0, dtype=F64))
    terms, _ = evaluate_bound(model, ds.test, exact=True, batch=n, grid=(s.scale, lo, hi))
    assert terms.edge.abs().max().item() < 1e-12
    y2 = ds.test.flatten(1) ** 2
    closed = (0.5 * (1 - b1) * (y2 - 1) - 0.5 * math.log(b1)).sum(1)  # nats per example
    diff = -terms.K - closed
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(n)
    assert (
        -terms.K.mean().item() / 9 / LN2 > 8 + math.log2(s.scale / math.sqrt(2 * math.pi * math.e * b1)) - 0.1
    )


def test_dequantized_figure_closed_form_and_theis_inequality() -> None:
    """Paper units on uniform pixels, equilibrium model (E[K | y] = log pi(y) for any schedule):
    dequantized_nll_bits_per_dim = E[-log2 pi(y)]/d - log2 scale with y = (k + u - shift) scale, in
    closed form 0.5 log2(2 pi) + 0.5 scale^2 (E(k - shift)^2 + 1/12)/ln 2 - log2 scale (4 SE).
    And (Theis et al. 2015) for the b1 -> 1 model both figures describe the same density pi: the
    dequantized NLL is >= the NLL of pi's bin masses, the discrete figure."""
    shape, n = (1, 4, 4), 3000
    ds = image_dataset(uniform_images(5000, shape, 9), uniform_images(n, shape, 10))
    s = ds.scaling
    shift = torch.tensor(s.shift, dtype=F64)
    e_k2 = (256**2 - 1) / 12 + (127.5 - shift) ** 2  # E (k - shift)^2 for k uniform on 0..255
    closed = (0.5 * math.log2(2 * math.pi) + 0.5 * s.scale**2 * (e_k2 + 1 / 12) / LN2).mean().item()
    closed -= math.log2(s.scale)
    for betas in (paper_betas(6, 1e-3), b1_near_one()):
        r = report(EquilibriumModel(betas), ds, n, exact=True, batch=n)
        se = r["dequantized_nll_stderr_bits_per_dim"]
        assert abs(r["dequantized_nll_bits_per_dim"] - closed) < 4 * se + 1e-3, (r, closed)
    assert r["dequantized_nll_bits_per_dim"] >= r["nll_bits_per_dim"]
    assert r["unit"] == "bits/pixel" and r["units_per_example"] == 16
    assert r["K_bits_per_dim"] == pytest.approx(r["K_bits"])  # one channel: per pixel = per dim


# --- the Parzen-window estimate -----------------------------------------------------------------------


def test_parzen_matches_brute_force_and_a_single_gaussian() -> None:
    """log mean_i N(x; s_i, sigma^2 I) against a direct float64 loop (1e-10); with one sample it is
    log N(x; s, sigma^2 I) exactly; the chosen sigma maximizes the mean validation log-likelihood among
    the paper's 10 log-spaced values in [0.1, 1]; bits = nats / ln 2."""
    g = torch.Generator().manual_seed(11)
    samples, x = torch.rand(37, 12, generator=g, dtype=F64), torch.rand(23, 12, generator=g, dtype=F64)
    for sigma in (0.1, 0.35):
        direct = torch.stack(
            [
                torch.logsumexp(-((xi - samples) ** 2).sum(1) / (2 * sigma**2), 0)
                - math.log(37)
                - 12 * math.log(sigma * math.sqrt(2 * math.pi))
                for xi in x
            ]
        )
        assert torch.allclose(parzen_log_likelihood(x, samples, sigma, batch=5), direct, atol=1e-10)
    one = parzen_log_likelihood(x, samples[:1], 0.2)
    gauss = -0.5 * ((x - samples[0]) ** 2).sum(1) / 0.04 - 12 * math.log(0.2 * math.sqrt(2 * math.pi))
    assert torch.allclose(one, gauss, atol=1e-10)
    assert len(SIGMAS) == 10 and SIGMAS[0] == pytest.approx(0.1) and SIGMAS[-1] == pytest.approx(1.0)
    best = max(SIGMAS, key=lambda s: parzen_log_likelihood(x, samples, s).mean().item())
    assert choose_sigma(x, samples) == best
    r = parzen_estimate(samples, x, x)
    assert r["parzen_bits"] == pytest.approx(r["parzen_nats"] / LN2)
    assert r["parzen_sigma"] == best and r["parzen_n_test"] == 23 and r["parzen_samples"] == 37


# --- loaders, and a tiny image run end to end ----------------------------------------------------------


def test_image_loaders_reject_missing_files_and_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match="texture image not found"):
        load_dataset(DataConfig(name="bark", path=str(tmp_path / "missing.gif")))
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        image_dataset(uniform_images(5, (4, 4), 0), uniform_images(5, (4, 4), 1))


TINY_IMAGE = [
    *TINY_IMAGE_NET,
    "train.steps=4",
    "train.log_every=2",
    "train.ckpt_every=4",
    "train.sample_every=2",
    "eval.n=16",
    "eval.exact=false",
]


def test_tiny_dead_leaves_run_end_to_end(tmp_path: Path, capsys) -> None:
    """train (with sample grids every 2 steps), evaluate --json (both units, each under its name),
    evaluate --parzen, sample to PNG; an 8 x 8 dead-leaves model, 4 steps."""
    run = tmp_path / "run"
    args = ["train", "dead_leaves", "--out", str(run), "--device", "cpu", "--quiet"]
    assert cli.main([*args, *(a for kv in TINY_IMAGE for a in ("--set", kv))]) == 0
    grids = sorted(p.name for p in (run / "samples").glob("step_*.png"))
    assert grids == ["step_0000002.png", "step_0000004.png"]
    # 16 in a 4 x 4 grid, each 8 x 8 image enlarged 8-fold to 64 x 64 (issue 17: readable grids)
    assert Image.open(run / "samples" / grids[0]).size == (4 * 66 + 2, 4 * 66 + 2)
    for rec in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()):  # evaluate's unit
        assert rec["unit"] == "bits/pixel" and rec["K_bits"] == pytest.approx(rec["K_bits_per_dim"])
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--json", "--device", "cpu"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["unit"] == "bits/pixel" and r["dims"] == 64 and r["units_per_example"] == 64
    for key in ("K_bits", "K_minus_Lnull_bits", "nll_bits_per_dim", "dequantized_nll_bits_per_dim"):
        assert math.isfinite(r[key]), key
    assert r["L_null_bits"] == pytest.approx(-0.5 * math.log2(2 * math.pi * math.e), abs=0.5)
    assert r["paper"] == {"K_bits": 1.489, "K_minus_Lnull_bits": 3.536}
    assert (
        cli.main(["evaluate", str(run), "--json", "--parzen", "--parzen-samples", "8", "--device", "cpu"])
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert r["parzen_samples"] == 8 and r["parzen_sigma"] in SIGMAS and r["parzen_n_test"] == 16
    assert r["parzen_bits"] == pytest.approx(r["parzen_nats"] / LN2) and r["parzen_stderr_bits"] > 0
    png = tmp_path / "s.png"
    assert cli.main(["sample", str(run), "--n", "4", "--out", str(png), "--device", "cpu"]) == 0
    img = np.asarray(Image.open(png))
    assert img.shape == (2 * 66 + 2, 2 * 66 + 2) and img.dtype == np.uint8
    # the last grid seen during training is what `thermodiff sample --seed 0` draws (clip included)
    assert (
        cli.main(["sample", str(run), "--n", "16", "--seed", "0", "--out", str(png), "--device", "cpu"]) == 0
    )
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(run / "samples" / grids[-1])))
    assert cli.main(["sample", str(run), "--n", "16", "--out", str(png), "--no-clip", "--device", "cpu"]) == 0
    assert not np.array_equal(
        np.asarray(Image.open(png)), np.asarray(Image.open(run / "samples" / grids[-1]))
    )


def test_parzen_needs_image_data(tiny_run: Path, capsys) -> None:
    assert cli.main(["evaluate", str(tiny_run), "--parzen", "--device", "cpu"]) == 2
    assert "--parzen needs 8-bit image data" in capsys.readouterr().err
