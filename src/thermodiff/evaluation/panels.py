"""The paper's sample figures from a run, in its layouts: the heartbeat's sequences (P Fig. 2), samples
beside held-out data (P Fig. 4, App. D), denoising (P Fig. 3) and inpainting (P Fig. 5), the last two
with the project's own conditioning (sampling/tasks.py: the model multiplied by r(x), P 2.5)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from thermodiff.data import Dataset
from thermodiff.plots.draw import binary_rows, condition_panel, grids_beside
from thermodiff.run.load import Run
from thermodiff.sampling.ancestral import data_box, sample
from thermodiff.sampling.tasks import denoise, inpaint


@torch.no_grad()
def model_samples(run: Run, n: int, seed: int = 0, device: str = "cpu") -> tuple[Tensor, Tensor]:
    """(x_0, x_T): n samples in model space (8-bit images kept in 0..255, as `thermodiff sample` draws
    them) and the draws from pi they started from."""
    kernel = run.model.kernel()
    gen = torch.Generator(device).manual_seed(seed)
    x_T = kernel.prior_sample((n, *run.spec.shape), generator=gen, device=device)
    fn, mults = run.model.model_fn(kernel), data_box(run.model, run.units)
    return sample(kernel, fn, run.spec.shape, n, gen, device, mults, x_T).cpu(), x_T.cpu()


def valid_count(ds: Dataset, x: Tensor) -> int | None:
    """How many of x have non-zero probability under the data's true distribution (None: unknown)."""
    if ds.true_log_prob is None:
        return None
    return int(torch.isfinite(ds.true_log_prob(x.to(torch.float64))).sum())


def sequences_figure(ds: Dataset, samples: Tensor, x_T: Tensor, path: Path) -> tuple[Path, int | None]:
    """P Fig. 2's layout for binary sequences: held-out data, samples x_0 and their starts x_T, one row
    each (rows of x_0 sorted by pattern, x_T in the same order: row i of x_T became row i of x_0)."""
    n = samples.shape[0]
    weights = 2.0 ** torch.arange(samples.shape[1] - 1, -1, -1, dtype=torch.float64)
    order = torch.argsort(samples.to(torch.float64) @ weights, descending=True, stable=True)
    data = ds.test[:n]
    data = data[torch.argsort(data.to(torch.float64) @ weights, descending=True, stable=True)]
    columns = [
        ("held-out data", data),
        ("model samples $x_0$", samples[order]),
        ("their start $x_T$", x_T[order]),
    ]
    return binary_rows(columns, path), valid_count(ds, samples)


def samples_figure(run: Run, ds: Dataset, samples: Tensor, path: Path) -> Path:
    """Held-out images beside model samples, as many of each (P Fig. 4's data | sample; App. D)."""
    px, data = run.units.model_to_pixels, ds.test[: samples.shape[0]]
    cols = [
        (f"{data.shape[0]} held-out images", px(data).float()),
        (f"{samples.shape[0]} model samples", px(samples).float()),
    ]
    return grids_beside(cols, path)


@torch.no_grad()
def denoising_figure(
    run: Run, ds: Dataset, samples: Tensor, path: Path, n: int = 4, seed: int = 0, device: str = "cpu"
) -> Path:
    """P Fig. 3: (a) held-out images, (b) plus Gaussian noise of variance 1 in model units (SNR 1),
    (c) a sample of the model's posterior given (b) (denoise: the exact Gaussian product at every
    step from x_T = y), (d) samples of the model."""
    gen = torch.Generator(device).manual_seed(seed)
    x = ds.test[:n].to(device)
    y = x + torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
    clean = denoise(run.model, y, 1.0, gen, data_box(run.model, run.units))
    px = run.units.model_to_pixels
    cols = [
        ("(a) held out", x.cpu()),
        ("(b) + noise, SNR 1", y.cpu()),
        ("(c) denoised", clean.cpu()),
        ("(d) model samples", samples[:n]),
    ]
    return condition_panel([(title, px(v).float()) for title, v in cols], path, max_rows=n)


def central_square(shape: tuple[int, ...], side: float = 0.4) -> Tensor:
    """The known-pixel mask of one (C, H, W) image: everything but the central square of `side` times
    the image's width (P Fig. 5: the central 100 x 100 pixels of a ~256-pixel bark image)."""
    _, h, w = shape
    k = max(1, round(side * min(h, w)))
    top, left = (h - k) // 2, (w - k) // 2
    known = torch.ones(shape, dtype=torch.bool)
    known[:, top : top + k, left : left + k] = False
    return known


@torch.no_grad()
def inpainting_figure(
    run: Run, ds: Dataset, path: Path, n: int = 4, seed: int = 0, device: str = "cpu"
) -> tuple[Path, int]:
    """P Fig. 5: (a) held-out images, (b) the central square replaced by noise, the start x_T of the
    reverse chain, (c) the square inpainted: the model times a delta on the known pixels at every step
    from x_T (P 2.5, the paper's constant r). Returns the path and the square's side in pixels."""
    x = ds.test[:n].to(device)
    known = central_square(run.spec.shape).expand_as(x).to(device)
    gen = torch.Generator(device).manual_seed(seed)
    start = torch.Generator(device).set_state(gen.get_state())  # inpaint's first draw: x_T
    x_T = run.model.kernel().prior_sample(tuple(x.shape), generator=start, device=device)
    filled = inpaint(run.model, x, known, gen, data_box(run.model, run.units), schedule="constant")
    px = run.units.model_to_pixels
    cols = [
        ("(a) held out", x),
        ("(b) centre: noise $x_T$", torch.where(known, x, x_T)),
        ("(c) inpainted", filled),
    ]
    side = int(math.isqrt(int((~known[0, 0]).sum())))
    return condition_panel([(t, px(v.cpu()).float()) for t, v in cols], path, max_rows=n), side
