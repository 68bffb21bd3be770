"""A progressive-denoising figure: samples of an image run along the reverse chain (P Fig. 2's rows,
DDPM Fig. 6), x_T on the left to x_0 on the right."""

from __future__ import annotations

from pathlib import Path

import torch

from thermodiff.plots.draw import condition_panel
from thermodiff.run.load import Run
from thermodiff.sampling.ancestral import data_box, p_sample_loop_progressive


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
