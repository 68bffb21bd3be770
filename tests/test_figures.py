"""A run's figures: a figure that cannot be drawn is named as missing with its reason, never dropped;
each experiment's figures are drawn on tiny runs with captions that state what was measured; the bound
by step t adds up to K."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY_IMAGE_NET, requires_data
from PIL import Image

from thermodiff.config import load_toml
from thermodiff.data import load_dataset
from thermodiff.data.binary import heartbeat_sequences
from thermodiff.diffusion.bound import bound_exact, to_bits
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.schedules import paper_betas
from thermodiff.diffusion.steps import GaussianStep
from thermodiff.evaluation.bystep import held_out_by_step, kl_by_step
from thermodiff.evaluation.estimate import evaluate_bound
from thermodiff.evaluation.figures import Figure, bound_figure, draw, paper_figures, run_figures
from thermodiff.evaluation.heldout import report
from thermodiff.evaluation.panels import model_samples
from thermodiff.run.load import load_run
from thermodiff.training.figures import run_plots
from thermodiff.training.train import train

F64 = torch.float64


def test_a_failing_figure_is_recorded_as_missing_with_its_reason():
    def broken() -> Path:
        raise ValueError("no test images")

    fig = draw("samples", "caption", broken)
    assert fig == Figure("samples", "caption", None, "ValueError: no test images")


def test_a_drawn_figure_keeps_its_path(tmp_path):
    fig = draw("curve", "caption", lambda: tmp_path / "c.png")
    assert fig.path == str(tmp_path / "c.png") and fig.missing is None
    assert fig.as_dict() == {"name": "curve", "caption": "caption", "path": fig.path, "missing": None}
    measured = draw("curve", "caption", lambda: (tmp_path / "c.png", "caption with 3 of 4"))
    assert measured == Figure("curve", "caption with 3 of 4", str(tmp_path / "c.png"))


# --- the bound by step t -------------------------------------------------------------------------------


def test_the_terms_by_step_add_up_to_K_of_the_same_examples(tiny_run: Path) -> None:
    """-sum_t KL_t + prior + edge equals K of evaluate_bound on the same examples and draws (exact over t),
    to rounding, over several batches; in bits per example, rows below t_first zero."""
    run = load_run(tiny_run)
    x = load_dataset(run.config.data).test[:50]
    steps = kl_by_step(run.model, x, batch=16)
    terms, _ = evaluate_bound(run.model, x, exact=True, batch=16, seed=0)
    K = to_bits(terms.K).mean().item()
    assert steps.t_first == 2 and steps.kl[:2] == [0.0, 0.0] and len(steps.kl) == run.model.schedule.T + 1
    assert abs(steps.total - K) < 1e-9 * max(1.0, abs(K))
    assert abs(steps.K - K) < 1e-12 * max(1.0, abs(K))
    assert all(v > 0 for v in steps.kl[2:])


class _Exact:
    """A model whose reverse step is the exact q(x_{t-1} | x_t) of Gaussian data N(0, diag s^2)."""

    def __init__(self, betas: torch.Tensor, s: torch.Tensor):
        self.k, ab = GaussianKernel(betas), torch.cumprod(1 - betas, 0)
        self.v = ab[:, None] * s**2 + (1 - ab[:, None])  # Var q(x_t), (T + 1, d)
        self.betas = betas

    def kernel(self) -> GaussianKernel:
        return self.k

    def model_fn(self, kernel) -> callable:
        def fn(x_t: torch.Tensor, t: torch.Tensor) -> GaussianStep:
            vt, vp, b = self.v[t], self.v[t - 1], self.betas[t][:, None]
            return GaussianStep(torch.sqrt(1 - b) * vp / vt * x_t, torch.log(b * vp / vt))

        return fn


def test_each_step_spends_what_the_closed_form_says_for_gaussian_data() -> None:
    """x_0 ~ N(0, diag(0.5^2, 2^2)) with the exact reverse kernel: E KL_t = 1/2 sum_d log(var_p / var_q),
    var_p of q(x_{t-1}|x_t), var_q of q(x_{t-1}|x_t, x_0) (total variance: E (mu_q - mu_p)^2 = var_p -
    var_q); each step's mean within 4 standard errors, taken from an independent draw of the estimator."""
    T = 12
    betas = paper_betas(T, 0.02)
    s = torch.tensor([0.5, 2.0], dtype=F64)
    model = _Exact(betas, s)
    g = torch.Generator().manual_seed(3)
    x0 = s * torch.randn(20_000, 2, generator=g, dtype=F64)
    steps = kl_by_step(model, x0, batch=5000)
    ab = torch.cumprod(1 - betas, 0)
    _, per_example = bound_exact(model.k, model.model_fn(model.k), x0, torch.Generator().manual_seed(4))
    checked = 0
    for t in range(2, T + 1):
        var_p = betas[t] * model.v[t - 1] / model.v[t]
        var_q = betas[t] * (1 - ab[t - 1]) / (1 - ab[t])
        want = to_bits(0.5 * torch.log(var_p / var_q).sum()).item()
        se = to_bits(per_example[t].std()).item() / math.sqrt(x0.shape[0])
        assert abs(steps.kl[t] - want) <= 4 * se, (t, steps.kl[t], want, se)
        checked += want > 10 * se  # steps whose closed form is far from 0: a real check
    assert checked >= 5


# --- every experiment's figures on tiny runs ---------------------------------------------------------


def _drawn(figures: list[Figure]) -> dict[str, Figure]:
    missing = [(f.name, f.missing) for f in figures if f.path is None]
    assert missing == []
    for f in figures:
        assert Path(f.path).is_file() and f.caption
    return {f.name: f for f in figures}


def test_swiss_roll_figures_with_the_learned_schedule(tiny_run: Path, tmp_path: Path) -> None:
    """2-D data with a learned schedule: Figure 1, the curve (with the evaluation being made on it), the
    bound by step (from the exact evaluation when given one: its numbers in the caption), the schedule."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    run = load_run(run_dir)
    ds = load_dataset(run.config.data)
    figs = _drawn(run_figures(run, ds, run_dir))
    assert list(figs) == ["figure1", "curve", "bound_by_step", "beta_schedule"]
    own = held_out_by_step(run.model, ds, 500, run.config.eval.batch)
    assert own.n == min(500, ds.test.shape[0]) == 300
    assert (
        f"{own.total:.4f}" in figs["bound_by_step"].caption
        and "first 300 held-out" in figs["bound_by_step"].caption
    )
    assert "beta_2..beta_T are learned" in figs["bound_by_step"].caption
    ev = report(run.model, ds, 40, True)
    ev["step"], ev["weights"] = run.step, run.weights
    curve = run_plots(run, tmp_path / "p", evaluation=ev)[0].caption
    assert f"true log-likelihood, {ev['true_loglik_bits']:.4f}" in curve and "the paper's K, 2.35" in curve
    cap = bound_figure(run, ds, tmp_path / "b.png", "cpu", ev).caption
    assert "the exact evaluation's 40 held-out" in cap
    assert f"{-sum(ev['kl_bits_by_t']) + ev['terms_bits']['prior'] + ev['terms_bits']['edge']:.4f}" in cap
    assert (
        abs(-sum(ev["kl_bits_by_t"]) + ev["terms_bits"]["prior"] + ev["terms_bits"]["edge"] - ev["K_bits"])
        < 1e-4
    )


def test_heartbeat_figures_count_the_valid_samples(tmp_path: Path) -> None:
    """Binary sequences: P Fig. 2's panel, its caption counting the samples that are one of the five
    heartbeats (counted here against the sequences themselves); beta fixed, so no schedule figure."""
    cfg = load_toml(
        "heartbeat",
        ["train.steps=3", "train.batch=16", "data.n_train=200", "data.n_test=64", "diffusion.T=10"]
        + ["model.hidden=16", "train.warmup=1", "train.log_every=1", "eval.batch=64"],
    )
    train(cfg, tmp_path / "hb")
    run = load_run(tmp_path / "hb")
    figs = _drawn(run_figures(run, load_dataset(run.config.data), tmp_path / "hb"))
    assert list(figs) == ["sequences", "curve", "bound_by_step"]
    x0, _ = model_samples(run, 32)
    valid = int((x0[:, None, :] == heartbeat_sequences()[None]).all(-1).any(-1).sum())
    assert f" {valid} of 32 samples are sequences the data can hold" in figs["sequences"].caption
    assert (
        "no edge term" in figs["bound_by_step"].caption
        and "fixed (schedule 'binomial')" in figs["bound_by_step"].caption
    )
    width, height = Image.open(figs["sequences"].path).size
    assert height > 300 and width > 400  # a row per sequence, cells a few pixels wide: readable


IMAGE_SETS = [*TINY_IMAGE_NET, "train.steps=2", "train.warmup=1", "train.log_every=1"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("img") / "run"
    train(load_toml("dead_leaves", IMAGE_SETS), out)
    return out


def test_image_figures_in_the_papers_layouts(image_run: Path, tmp_path: Path) -> None:
    """Gaussian images: samples beside data, P Fig. 3 denoising, P Fig. 5 inpainting, the curve, the
    progressive strip, the bound by step; each readable (no image under 64 pixels a side)."""
    run_dir = tmp_path / "run"
    shutil.copytree(image_run, run_dir)
    run = load_run(run_dir)
    figs = _drawn(run_figures(run, load_dataset(run.config.data), run_dir))
    assert list(figs) == ["samples", "denoising", "inpainting", "curve", "progressive", "bound_by_step"]
    assert "central 3 x 3 square replaced by Gaussian noise" in figs["inpainting"].caption  # 0.4 of 8
    assert "first 8 held-out examples" in figs["bound_by_step"].caption
    for name in ("samples", "denoising", "inpainting"):
        assert min(Image.open(figs[name].path).size) > 250


@requires_data("binarized-mnist")
def test_binary_images_get_samples_and_inpainting_without_denoising(tmp_path: Path) -> None:
    """A binomial image run: no Gaussian denoising (P Fig. 3 needs a Gaussian kernel); inpainting starts
    the hole from Bernoulli noise, as its caption says."""
    sets = ["data.n_train=100", "data.n_test=16", "diffusion.T=10", "model.base=8", "model.mults=1"]
    sets += ["model.num_res_blocks=1", "model.attn_resolutions=", "train.steps=2", "train.batch=8"]
    sets += ["train.warmup=1", "train.sample_every=0", "train.precision=fp32", "train.channels_last=false"]
    train(load_toml("binarized_mnist", sets), tmp_path / "run")
    run = load_run(tmp_path / "run")
    figs = _drawn(paper_figures(run, load_dataset(run.config.data), tmp_path / "run", "cpu"))
    assert list(figs) == ["samples", "inpainting"]
    assert f"replaced by Bernoulli({run.model.p_bar:.3g}) noise" in figs["inpainting"].caption


def test_a_failing_figure_leaves_the_others(image_run: Path, tmp_path: Path, monkeypatch) -> None:
    from thermodiff.evaluation import panels

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(panels, "denoising_figure", broken)
    run_dir = tmp_path / "run"
    shutil.copytree(image_run, run_dir)
    run = load_run(run_dir)
    figs = {f.name: f for f in paper_figures(run, load_dataset(run.config.data), run_dir, "cpu")}
    assert list(figs) == ["samples", "denoising", "inpainting"]
    assert figs["denoising"].missing == "RuntimeError: out of memory" and figs["denoising"].path is None
    assert all(f.path is not None for n, f in figs.items() if n != "denoising")


def test_the_learned_schedule_is_drawn_against_its_own_start(tiny_run: Path) -> None:
    """The start is learned_init as training began it (beta_2..beta_T clamped to >= 1e-6, beta_1 kept):
    an untrained copy of the run's schedule gives exactly it."""
    from thermodiff.diffusion.schedules import BETA_MIN, log_snr_betas
    from thermodiff.evaluation.schedule import learned_and_initial

    run = load_run(tiny_run)
    d = run.config.diffusion
    learned, initial = learned_and_initial(run)
    raw = log_snr_betas(d.T, d.beta_1).numpy()
    assert initial[1] == raw[1] == d.beta_1
    assert (initial[2:] >= BETA_MIN).all() and abs(initial[2:] - raw[2:].clip(BETA_MIN)).max() < 1e-12
    assert learned.shape == initial.shape and abs(learned - initial).max() > 0  # 30 steps moved it
