"""Figures (matplotlib, Agg): the paper's Figure 1 for 2-D data, sample grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from thermodiff.run.checkpoint import atomic_write_bytes  # noqa: E402


def _save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


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
    return _save(fig, path)


def scatter(points: torch.Tensor, path: Path, title: str = "") -> Path:
    """2-D samples as a scatter plot."""
    fig, ax = plt.subplots(figsize=(4, 4))
    p = points.cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=1, alpha=0.5)
    ax.set_aspect("equal")
    ax.set_title(title)
    return _save(fig, path)


def image_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    """(N, C, H, W) in [0, 1] -> one PNG grid."""
    from PIL import Image

    x = images.detach().clamp(0, 1).cpu().numpy()
    n, c, h, w = x.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol = int(np.ceil(n / nrow))
    grid = np.ones((c, ncol * (h + 2) + 2, nrow * (w + 2) + 2), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + q * (w + 2) : 2 + q * (w + 2) + w] = x[i]
    arr = (grid.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if c == 1 else arr)
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


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
    return _save(fig, path)
