"""Compute what the figures show (trajectories, drift fields) from a model; plots.py draws them."""

from __future__ import annotations

from pathlib import Path

import torch

from thermodiff.data import Dataset
from thermodiff.model.assemble import DiffusionModel
from thermodiff.plots.draw import figure1
from thermodiff.sampling.ancestral import p_sample_loop_progressive


@torch.no_grad()
def swiss_roll_figure(model: DiffusionModel, ds: Dataset, path: Path, n: int = 2000, seed: int = 0) -> Path:
    """P Figure 1 for any 2-D data set: forward and reverse trajectories and the reverse drift."""
    kernel = model.kernel()
    fn = model.model_fn(kernel)
    T = kernel.T
    dev = kernel.betas.device  # where the model lives
    steps = (0, T // 2, T)
    gen = torch.Generator(dev).manual_seed(seed)
    x0 = ds.test[:n].to(dev, torch.float64)
    forward = {}
    for s in steps:
        t = torch.full((x0.shape[0],), s, dtype=torch.long, device=dev)
        forward[s] = x0 if s == 0 else kernel.q_sample(x0, t, kernel.noise_like(x0, gen))
    reverse = {}
    x_T = kernel.prior_sample((n, 2), generator=gen, device=dev)
    for t, x in p_sample_loop_progressive(kernel, fn, x_T, gen):
        if t in steps:
            reverse[t] = x
    axis = torch.linspace(-2.2, 2.2, 21, dtype=torch.float64, device=dev)
    grid = torch.cartesian_prod(axis, axis)
    drift = {}
    for s in steps:
        # the drift of the first *learned* step stands for t = 0 (step 1 is the fixed reversal)
        t = torch.full((grid.shape[0],), max(s, 2), dtype=torch.long, device=dev)
        drift[s] = (grid, fn(grid, t).mean.to(torch.float64) - grid)
    return figure1(forward, reverse, drift, path)
