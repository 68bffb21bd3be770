"""Line figures of a run (matplotlib, Agg): the training curve, the bound's terms by step t (where
the bits are spent, P eq. 14) and a learned beta schedule against its start (P 2.4.1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from thermodiff.plots.canvas import plt, save_figure
from thermodiff.run.card import read_jsonl


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
    return save_figure(fig, path)


def held_out_evaluations(run_dir: Path) -> list[dict]:
    """The evaluations recorded in RUN/evals/index.json that have a step (a missing or torn index: none)."""
    try:
        index = json.loads((Path(run_dir) / "evals" / "index.json").read_text())
    except (OSError, ValueError):
        index = []
    index = index if isinstance(index, list) else []
    return [e for e in index if isinstance(e, dict) and isinstance(e.get("step"), int)]


def run_curve(run_dir: Path, path: Path, title: str = "", extra: dict | None = None) -> Path:
    """The training curve of a run directory: metrics.jsonl and evals/index.json, plus `extra` (an
    evaluation not yet recorded, e.g. the one `reproduce` is about to write). ValueError: no records."""
    metrics = read_jsonl(Path(run_dir) / "metrics.jsonl")
    if not any("K_bits" in m for m in metrics):
        raise ValueError(f"{Path(run_dir) / 'metrics.jsonl'}: no training records of K to plot")
    evals = held_out_evaluations(run_dir)
    if extra is not None and isinstance(extra.get("step"), int) and extra not in evals:
        evals.append(extra)
    return training_curve(metrics, evals, path, title=title)


def bound_by_step(
    kl_bits: list[float], t_first: int, prior: float, edge: float, unit: str, path: Path, title: str = ""
) -> Path:
    """Where the bits are spent: each step's KL term of K (P eq. 14) against t (log scale), with the
    share of their sum spent at steps <= t on a second axis; the prior and edge terms in the legend."""
    t = np.arange(t_first, len(kl_bits))
    kl = np.asarray(kl_bits[t_first:], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4))
    positive = kl > 0
    ax.plot(t[positive], kl[positive], color="C0", lw=1.2, marker="." if len(t) <= 60 else None)
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel(f"KL term at step t ({unit})")
    ax2 = ax.twinx()
    share = 100 * np.cumsum(kl) / kl.sum() if kl.sum() > 0 else np.zeros_like(kl)
    ax2.plot(t, share, color="C1", lw=1.0, ls="--")
    ax2.set_ylim(0, 100)
    ax2.set_ylabel("share of the KL sum at steps <= t (%, dashed)", color="C1")
    text = (
        f"sum of the KL terms {kl.sum():.4g}, prior term {prior:.4g}, edge term {edge:.4g}:  "
        f"K = -sum + prior + edge = {-kl.sum() + prior + edge:.4g} {unit}"
    )
    ax.text(0.0, -0.16, text, transform=ax.transAxes, fontsize=8, va="top")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def beta_schedule(learned: np.ndarray, initial: np.ndarray, path: Path, title: str = "") -> Path:
    """A learned schedule beta_1..beta_T against the one it started from (P 2.4.1), with the signal
    left, alpha_bar_t = prod_{s<=t} (1 - beta_s), in a second panel (log scales)."""
    t = np.arange(1, len(learned))
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for betas, name, style in ((initial, "initial", "--"), (learned, "learned", "-")):
        a.plot(t, betas[1:], ls=style, marker="." if len(t) <= 60 else None, label=name)
        b.plot(t, np.cumprod(1 - betas[1:]), ls=style, marker="." if len(t) <= 60 else None, label=name)
    a.set_yscale("log")
    a.set_xlabel("step t")
    a.set_ylabel("$\\beta_t$")
    b.set_yscale("log")
    b.set_xlabel("step t")
    b.set_ylabel("$\\bar\\alpha_t$ (signal variance left)")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
