"""The cheap figures of a run, written when training ends and by `thermodiff plot`: the training curve,
and for images a progressive-denoising strip (samples along the reverse chain: P Fig. 2's rows, DDPM
Fig. 6), x_T on the left to x_0 on the right. A figure that cannot be drawn is named missing (draw)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from thermodiff.plots.curves import run_curve
from thermodiff.plots.draw import condition_panel
from thermodiff.plots.record import Figure, draw
from thermodiff.run.load import Run, load_run
from thermodiff.sampling.ancestral import data_box, p_sample_loop_progressive

CURVE = (
    "Training curve: K (P eq. 14) against the training step, on training batches (one random t per "
    "example, the raw weights, averaged over each log interval) and on held-out data where it was "
    "evaluated (±2 standard errors, the weights named); the learning rate dashed, on its own axis."
)


def curve_caption(run: Run, evaluation: dict | None) -> str:
    """CURVE, plus the horizontal lines drawn: the paper's K (P Table 1), the data's true log-likelihood."""
    ref, truth = run.config.eval.reference_K_bits, (evaluation or {}).get("true_loglik_bits")
    lines = [f"the paper's K, {ref:g} (dotted, P Table 1)"] if math.isfinite(ref) else []
    lines += [f"the data's true log-likelihood, {truth:.4f} (dash-dot)"] if truth is not None else []
    return CURVE if not lines else CURVE[:-1] + "; lines: " + " and ".join(lines) + "."


def strip_caption(run: Run, n: int, seed: int) -> str:
    boxed = "; predicted images kept in 0..255" if run.units.eight_bit else ""
    return (
        f"Progressive denoising: {n} samples (rows) along the reverse chain, x_T ~ pi on the left to "
        f"x_0 on the right, at 8 steps t from {run.model.schedule.T} to 0 ({run.weights} weights, "
        f"seed {seed}{boxed})."
    )


@torch.no_grad()
def denoising_strip(
    run: Run, path: Path, n: int = 6, columns: int = 8, seed: int = 0, device: str = "cpu"
) -> Path:
    """n samples (rows) at `columns` steps t from T to 0 (columns), in pixels, as one figure."""
    kernel, units = run.model.kernel(), run.units
    shown = sorted({round(kernel.T * (1 - i / (columns - 1))) for i in range(columns)}, reverse=True)
    gen = torch.Generator(device).manual_seed(seed)
    x_T = kernel.prior_sample((n, *run.spec.shape), generator=gen, device=device)
    mults = data_box(run.model, units)
    kept = {}
    for t, x in p_sample_loop_progressive(kernel, run.model.model_fn(kernel), x_T, gen, mults):
        if t in shown:
            kept[t] = units.model_to_pixels(x.cpu()).float()
    return condition_panel([(f"t = {t}", kept[t]) for t in shown], path, max_rows=n)


def run_plots(
    run: Run,
    out: Path,
    seed: int = 0,
    device: str = "cpu",
    evaluation: dict | None = None,
    reuse_strip: bool = False,
) -> list[Figure]:
    """OUT/curve.png (with `evaluation` on it, if given and not yet recorded) and, for images,
    OUT/denoising.png; each a Figure, drawn or named missing. reuse_strip: a strip the end of training
    drew (the same weights and seed, after the latest checkpoint) is listed, not drawn again."""
    out = Path(out)
    name, data = run.path.name, run.config.data.name
    title = f"{name}{'' if name == data else f' ({data})'}, step {run.step}"
    figures = [
        draw(
            "curve",
            curve_caption(run, evaluation),
            lambda: run_curve(
                run.path, out / "curve.png", title, evaluation, run.config.eval.reference_K_bits
            ),
        )
    ]
    if run.units.is_image:
        caption, strip = strip_caption(run, 6, seed), out / "denoising.png"
        if reuse_strip and seed == 0 and run.weights == "ema" and drawn_after_checkpoint(strip, run.path):
            figures.append(Figure("progressive", caption, str(strip)))
        else:
            figures.append(
                draw("progressive", caption, lambda: denoising_strip(run, strip, 6, seed=seed, device=device))
            )
    return figures


def drawn_after_checkpoint(path: Path, run_dir: Path) -> bool:
    """Whether `path` was written after the run's latest checkpoint was saved (at the end of training)."""
    try:
        return path.stat().st_mtime_ns >= (Path(run_dir) / "checkpoints" / "LATEST").stat().st_mtime_ns
    except OSError:
        return False


def end_of_training(run_dir: Path, device: str = "cpu") -> list[Figure]:
    """RUN/plots/ as `thermodiff plot RUN` draws it, from the moving-average weights just saved; nothing
    raised, so that a figure never costs a training run (a run that cannot be loaded: the curve missing)."""
    try:
        run = load_run(run_dir, device)
    except Exception as err:  # noqa: BLE001 - recorded, never raised: the run itself is saved
        return [Figure("curve", CURVE, None, f"{type(err).__name__}: {err}")]
    return run_plots(run, Path(run_dir) / "plots", device=device)
