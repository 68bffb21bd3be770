"""A run's figures for `reproduce` and its report, each with a caption in the paper's terms, drawn or
named as missing with the reason (plots/record.py), so that a report can say what is absent instead of
silently leaving it out. Every experiment gets its training curve and the bound by step t; the paper's
own figures by what the data are (P Figs. 1-5, App. D); the beta schedule where it is learned."""

from __future__ import annotations

from pathlib import Path

from thermodiff.data import Dataset
from thermodiff.plots.record import Figure, draw
from thermodiff.run.load import Run

__all__ = ["Figure", "draw", "run_figures"]

N_IMAGES = 16  # samples beside as many held-out images
N_PANEL = 4  # rows of the denoising and inpainting panels (a chain each)
N_SEQUENCES = 32
BY_STEP_N = {"images": 8, "other": 500}  # held-out examples for K by step, unless an evaluation has it


def run_figures(
    run: Run, ds: Dataset, out: Path, device: str = "cpu", evaluation: dict | None = None
) -> list[Figure]:
    """The figures `reproduce` draws into the run directory `out` (the paper's at its top, the run's
    diagnostics in out/plots/). evaluation: the held-out evaluation just made (heldout.report's dict
    with its step), shown on the training curve; when exact over t, its terms by step are used."""
    from thermodiff.training.figures import run_plots

    out = Path(out)
    figures = paper_figures(run, ds, out, device)
    figures += run_plots(run, out / "plots", device=device, evaluation=evaluation, reuse_strip=True)
    figures.append(bound_figure(run, ds, out / "plots" / "bound_by_step.png", device, evaluation))
    if run.model.schedule.learnable:
        figures.append(schedule_figure(run, out / "plots" / "beta_schedule.png"))
    return figures


def paper_figures(run: Run, ds: Dataset, out: Path, device: str) -> list[Figure]:
    """P Fig. 1 (2-D data), P Fig. 2 (binary sequences), samples beside data (images: P Fig. 4, App. D),
    P Fig. 3 denoising (Gaussian images) and P Fig. 5 inpainting (images)."""
    from thermodiff.evaluation import panels

    shape, weights = ds.spec.shape, run.weights
    if shape == (2,):
        from thermodiff.evaluation.figure1 import swiss_roll_figure

        caption = (
            "P Figure 1: the forward trajectory q(x_t) (top), the reverse trajectory p(x_t) from the "
            "model (middle) and the drift of the reverse mean f_mu(x_t, t) - x_t (bottom), at t = 0, "
            f"T/2, T (T = {run.model.schedule.T}; {min(2000, ds.test.shape[0]):,} held-out points, 2,000 "
            f"samples, {weights} weights, seed 0)."
        )
        return [draw("figure1", caption, lambda: swiss_roll_figure(run.model, ds, out / "figure1.png"))]
    if len(shape) == 1 and ds.spec.kind == "binary":
        return [draw("sequences", "P Figure 2: binary sequences.", lambda: _sequences(run, ds, out, device))]
    if len(shape) != 3:
        return []
    cache: dict = {}

    def samples():
        if "x" not in cache:
            cache["x"] = panels.model_samples(run, N_IMAGES, 0, device)[0]
        return cache["x"]

    n_data = min(N_IMAGES, ds.test.shape[0])
    caption = (
        f"Samples beside the data (P Fig. 4, App. D): {n_data} held-out images (left) and {N_IMAGES} "
        f"samples of the model (right; {weights} weights, seed 0"
        + ("; predicted images kept in 0..255" if ds.units.eight_bit else "")
        + ")."
    )
    figures = [
        draw("samples", caption, lambda: panels.samples_figure(run, ds, samples(), out / "samples.png"))
    ]
    if run.config.diffusion.kernel == "gaussian":
        caption = (
            f"P Figure 3, denoising: (a) {N_PANEL} held-out images, (b) the same with Gaussian noise of "
            "variance 1 added in the model's units (the data scaled to unit variance: SNR 1; shown "
            "clipped to the pixel range), (c) a "
            "sample of the model's posterior given (b), the model times N(y; x, 1) multiplied exactly "
            "at every reverse step from x_T = y (P 2.5, App. C), (d) samples of the model "
            f"(not related to the rows). {weights} weights, seed 0."
        )

        def denoised() -> Path:
            return panels.denoising_figure(run, ds, samples(), out / "denoised.png", N_PANEL, 0, device)

        figures.append(draw("denoising", caption, denoised))
    figures.append(draw("inpainting", "P Figure 5: inpainting.", lambda: _inpainting(run, ds, out, device)))
    return figures


def _sequences(run: Run, ds: Dataset, out: Path, device: str) -> tuple[Path, str]:
    from thermodiff.evaluation.panels import model_samples, sequences_figure

    x0, x_T = model_samples(run, N_SEQUENCES, 0, device)
    path, valid = sequences_figure(ds, x0, x_T, out / "sequences.png")
    length, kernel = ds.spec.shape[0], run.config.diffusion.kernel
    noise = f"Bernoulli({run.model.p_bar:.3g})" if kernel == "binomial" else "N(0, I) (shown clipped to 0..1)"
    said = "" if valid is None else f" {valid} of {N_SEQUENCES} samples are sequences the data can hold."
    caption = (
        f"P Figure 2, binary sequences: {N_SEQUENCES} held-out sequences (left), {N_SEQUENCES} samples "
        f"of the {kernel} diffusion model (middle) and the noise x_T ~ {noise} each sample started from "
        f"(right, same row); one row per sequence of {length} bins, 1 black. Rows are sorted by pattern "
        f"(the paper instead shifted each row to start with a pulse). {run.weights} weights, seed 0.{said}"
    )
    return path, caption


def _inpainting(run: Run, ds: Dataset, out: Path, device: str) -> tuple[Path, str]:
    from thermodiff.evaluation.panels import inpainting_figure

    path, side = inpainting_figure(run, ds, out / "inpainted.png", N_PANEL, 0, device)
    h, w = ds.spec.shape[1:]
    gaussian = run.config.diffusion.kernel == "gaussian"
    noise = "Gaussian noise (shown clipped)" if gaussian else f"Bernoulli({run.model.p_bar:.3g}) noise"
    caption = (
        f"P Figure 5, inpainting: (a) {N_PANEL} held-out images ({h} x {w}), (b) the central {side} x {side} "
        f"square replaced by {noise}, the start x_T of the reverse chain, (c) the square inpainted: "
        "a sample of the model times a delta on the known pixels, applied at every reverse step "
        f"(P 2.5: the paper's constant r). {run.weights} weights, seed 0."
    )
    return path, caption


def bound_figure(run: Run, ds: Dataset, path: Path, device: str, evaluation: dict | None = None) -> Figure:
    """Where the bits are spent: K's KL term at each step t, and the prior and edge terms (P eq. 14)."""
    from thermodiff.evaluation.bystep import from_evaluation, held_out_by_step
    from thermodiff.plots.curves import bound_by_step

    t_first, unit = run.model.kernel().t_first, ds.spec.unit
    caption = "K by step t: where the bits are spent."

    def make() -> tuple[Path, str]:
        steps = from_evaluation(evaluation, t_first) if evaluation else None
        where = "the exact evaluation's"
        if steps is None:
            n = BY_STEP_N["images" if len(ds.spec.shape) == 3 else "other"]
            steps = held_out_by_step(run.model, ds, n, run.config.eval.batch, device)
            where = "the first"
        title = f"{run.config.data.name}: K by step t ({steps.n} held-out examples)"
        drawn = bound_by_step(steps.kl, t_first, steps.prior, steps.edge, unit, path, title)
        return drawn, _bound_caption(run, steps, unit, where)

    return draw("bound_by_step", caption, make)


def _bound_caption(run: Run, steps, unit: str, where: str) -> str:
    d = run.config.diffusion
    edge = (
        f"the edge term E log p(x_0|x_1) {steps.edge:.4f} (step 1 fixed: the reversal of the forward "
        "step, P App. B.2)"
        if steps.t_first == 2
        else "no edge term (the last reverse step p(x_0|x_1) is learned: t = 1 is in the sum)"
    )
    fixed = "binomial" if d.kernel == "binomial" else d.schedule  # as model/assemble.py builds it
    deq = " (dequantized by one grey level, as `evaluate` does)" if run.units.eight_bit else ""
    beta = (
        f"beta_2..beta_T are learned (P 2.4.1; the schedule figure), from '{d.learned_init}'"
        if run.model.schedule.learnable
        else f"beta is fixed (schedule '{fixed}'), not learned, so there is no schedule figure"
    )
    return (
        f"Where the bits are spent: the KL term E KL(q(x_(t-1)|x_t,x_0) || p(x_(t-1)|x_t)) of K at each step "
        f"t = {steps.t_first}..{run.model.schedule.T} (P eq. 14), in {unit}, averaged over {where} "
        f"{steps.n} held-out examples{deq} with every t evaluated (log scale); dashed: the share of "
        f"their sum spent at steps <= t. K = -sum + prior + edge = {steps.total:.4f} {unit}: the sum "
        f"{sum(steps.kl):.4f}, the prior term -KL(q(x_T|x_0) || pi) {steps.prior:.4f} and {edge}. "
        f"{run.weights} weights. Here {beta}."
    )


def schedule_figure(run: Run, path: Path) -> Figure:
    """A learned beta schedule against the one it started from (P 2.4.1)."""
    from thermodiff.diffusion.schedules import BETA_MIN
    from thermodiff.evaluation.schedule import learned_and_initial
    from thermodiff.plots.curves import beta_schedule

    d = run.config.diffusion
    caption = (
        f"The learned beta schedule (P 2.4.1: beta_2..beta_T trained on K with the noise frozen, beta_1 = "
        f"{d.beta_1:g} fixed) against where training started it ('{d.learned_init}', beta_2..beta_T clamped "
        f"to >= {BETA_MIN:g}), T = {d.T}; right: "
        "the signal variance left at step t, alpha_bar_t = prod_(s<=t) (1 - beta_s). Log scales."
    )

    def make() -> Path:
        learned, initial = learned_and_initial(run)
        return beta_schedule(
            learned, initial, path, f"{run.config.data.name}: beta schedule, step {run.step}"
        )

    return draw("beta_schedule", caption, make)
