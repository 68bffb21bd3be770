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
    return _save(fig, path)


def image_grid(images: torch.Tensor, path: Path, nrow: int | None = None, min_tile: int = 64) -> Path:
    """(N, C, H, W) in [0, 1] -> one PNG grid, each image enlarged by a whole factor (nearest pixel)
    to at least min_tile pixels a side, so that a 28 x 28 grid is readable without zooming."""
    from PIL import Image

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


def training_curve(metrics: list[dict], evals: list[dict], path: Path, title: str = "") -> Path:
    """K against the step: training batches (metrics.jsonl: the one-t estimate, raw weights, averaged
    over each log interval), held-out evaluations (evals/index.json, with their standard errors) and
    the learning rate on its own axis."""
    fig, ax = plt.subplots(figsize=(7, 4))
    unit = next((m.get("unit") for m in metrics if "unit" in m), "bits")
    train = [(m["step"], m["K_bits"]) for m in metrics if "K_bits" in m]
    if train:
        ax.plot(*zip(*train, strict=True), lw=1.2, label="K, training batches (raw weights)")
    for weights, marker in (("ema", "o"), ("raw", "s")):
        pts = [e for e in evals if e.get("weights", "ema") == weights and "K_bits" in e]
        if pts:
            ax.errorbar(
                [e["step"] for e in pts],
                [e["K_bits"] for e in pts],
                yerr=[2 * e.get("stderr_bits", 0.0) for e in pts],
                fmt=marker,
                capsize=3,
                label=f"K, held out ({weights} weights, ±2 SE)",
            )
    ax.set_xlabel("step")
    ax.set_ylabel(f"K ({unit})")
    lr = [(m["step"], m["lr"]) for m in metrics if "lr" in m]
    if lr:
        ax2 = ax.twinx()
        ax2.plot(*zip(*lr, strict=True), color="0.6", lw=0.8, ls="--")
        ax2.set_ylabel("learning rate (dashed)", color="0.4")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)
