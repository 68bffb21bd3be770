"""Figures of samples (matplotlib, Agg): the paper's Figure 1 for 2-D data, sample grids, binary
sequences as images, the conditioning panels of P Figs. 3-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from thermodiff.plots.canvas import plt, save_figure
from thermodiff.run.checkpoint import atomic_write_bytes


def figure1(
    forward: dict[int, torch.Tensor],
    reverse: dict[int, torch.Tensor],
    drift: dict[int, tuple[torch.Tensor, torch.Tensor]],
    path: Path,
    lim: float = 2.5,
) -> Path:
    """P Figure 1: row 1 forward trajectory q(x_t) at t = 0, T/2, T; row 2 reverse trajectory p(x_t);
    row 3 the drift f_mu(x_t, t) - x_t of the reverse mean on a grid."""
    steps = sorted(forward)
    fig, axes = plt.subplots(3, len(steps), figsize=(3.2 * len(steps), 9.6))
    for j, t in enumerate(steps):
        for row, data, name in ((0, forward, "q"), (1, reverse, "p")):
            pts = data[t].cpu().numpy()
            ax = axes[row, j]
            ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4, color="C0" if row == 0 else "C1")
            ax.set_title(f"{name}(x$^{{({t})}}$)")
        grid, vec = drift[t]
        g, v = grid.cpu().numpy(), vec.cpu().numpy()
        axes[2, j].quiver(g[:, 0], g[:, 1], v[:, 0], v[:, 1], color="C2", angles="xy")
        axes[2, j].set_title(f"f$_\\mu$(x, {max(t, 2)}) - x")
    for ax in axes.flat:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("forward q")
    axes[1, 0].set_ylabel("reverse p")
    axes[2, 0].set_ylabel("drift")
    return save_figure(fig, path)


def scatter(points: torch.Tensor, path: Path, title: str = "") -> Path:
    """2-D samples as a scatter plot."""
    fig, ax = plt.subplots(figsize=(4, 4))
    p = points.cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=1, alpha=0.5)
    ax.set_aspect("equal")
    ax.set_title(title)
    return save_figure(fig, path)


def sequences(x: torch.Tensor, path: Path, title: str = "", most: int = 16) -> Path:
    """1-D samples (N, L) (the heartbeat's sequences) as line plots, one panel each, at most `most`."""
    x = x.detach().cpu().numpy()[:most]
    cols = min(4, x.shape[0])
    rows = -(-x.shape[0] // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 1.6 * rows), squeeze=False, sharey=True)
    for i, ax in enumerate(axes.flat):
        if i < x.shape[0]:
            ax.plot(np.arange(x.shape[1]), x[i], lw=1.2)
        else:
            ax.set_axis_off()
    fig.suptitle(title)
    return save_figure(fig, path)


def tile(images: torch.Tensor, nrow: int | None = None, min_tile: int = 64) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H', W', C) float array of the images in rows of `nrow` on a white
    ground, each enlarged by a whole factor (nearest pixel) to at least min_tile pixels a side."""
    x = images.detach().clamp(0, 1).cpu().numpy()
    zoom = max(1, -(-min_tile // max(x.shape[2], x.shape[3])))
    x = x.repeat(zoom, axis=2).repeat(zoom, axis=3)
    n, c, h, w = x.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol = int(np.ceil(n / nrow))
    grid = np.ones((c, ncol * (h + 2) + 2, nrow * (w + 2) + 2), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + q * (w + 2) : 2 + q * (w + 2) + w] = x[i]
    return grid.transpose(1, 2, 0)


def image_grid(images: torch.Tensor, path: Path, nrow: int | None = None, min_tile: int = 64) -> Path:
    """(N, C, H, W) in [0, 1] -> one PNG grid (tile), so that a 28 x 28 grid is readable without zooming."""
    import io

    from PIL import Image

    arr = (tile(images, nrow, min_tile) * 255).round().astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def grids_beside(columns: list[tuple[str, torch.Tensor]], path: Path, inches: float = 3.6) -> Path:
    """Titled image grids side by side (e.g. held-out data beside model samples, P Fig. 4 and App. D);
    each column (N, C, H, W) in [0, 1]."""
    fig, axes = plt.subplots(1, len(columns), figsize=(inches * len(columns), inches + 0.4), squeeze=False)
    for ax, (title, images) in zip(axes[0], columns, strict=True):
        arr = tile(images, min_tile=32)
        ax.imshow(arr[..., 0] if arr.shape[2] == 1 else arr, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    return save_figure(fig, path)


def binary_rows(columns: list[tuple[str, torch.Tensor]], path: Path, cell: float = 0.16) -> Path:
    """Binary sequences (N, L) as images, one row per sequence, 1 black and 0 white, titled panels side
    by side (P Fig. 2: the heartbeat's samples and the noise they started from)."""
    n = max(x.shape[0] for _, x in columns)
    length = max(x.shape[1] for _, x in columns)
    across = min(cell, 6.0 / length)  # long sequences: a panel at most 6 inches wide
    width, height = across * length + 0.8, cell * n + 1.0
    fig, axes = plt.subplots(1, len(columns), figsize=(width * len(columns), height), squeeze=False)
    for ax, (title, x) in zip(axes[0], columns, strict=True):
        v = x.detach().cpu().numpy()
        grid = {"edgecolors": "0.85", "linewidth": 0.3} if across == cell else {}
        ax.pcolormesh(v, cmap="Greys", vmin=0, vmax=1, **grid)
        ax.set_xlim(0, length)
        ax.set_ylim(n, 0)
        ax.set_aspect(cell / across)  # a row `cell` inches tall, a bin `across` wide
        if length <= 60:
            ax.set_xticks(np.arange(0, length, 5) + 0.5, [str(i) for i in range(0, length, 5)], fontsize=8)
        ax.set_yticks([])
        ax.set_xlabel("bin", fontsize=8)
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def condition_panel(columns: list[tuple[str, torch.Tensor]], path: Path, max_rows: int = 8) -> Path:
    """P Figs. 3-5: titled columns side by side (e.g. clean, corrupted, result), one row per example;
    each column is (N, C, H, W) in [0, 1]."""
    n = min(max_rows, max(c.shape[0] for _, c in columns))
    fig, axes = plt.subplots(n, len(columns), figsize=(1.6 * len(columns), 1.6 * n), squeeze=False)
    for j, (title, images) in enumerate(columns):
        for i in range(n):
            ax = axes[i, j]
            ax.set_axis_off()
            if i < images.shape[0]:
                img = images[i].detach().clamp(0, 1).cpu().permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(title, fontsize=8)
    return save_figure(fig, path)
