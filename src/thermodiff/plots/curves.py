"""Line figures of a run (matplotlib, Agg): the training curve, the bound's terms by step t (where
the bits are spent, P eq. 14) and a learned beta schedule against its start (P 2.4.1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from thermodiff.plots.canvas import plt, save_figure
from thermodiff.run.jsonl import read_jsonl


def training_curve(
    metrics: list[dict],
    evals: list[dict],
    path: Path,
    title: str = "",
    reference: float | None = None,
    truth: float | None = None,
) -> Path:
    """K against the step: training batches (metrics.jsonl: the one-t estimate, raw weights, averaged
    over each log interval), held-out evaluations (evals/index.json's test-split ones, with their
    standard errors), the paper's K (`reference`, P Table 1), the data's true log-likelihood where
    known (`truth`) and the learning rate on its own axis. The first tenth of the
    steps does not set the K axis (early K is far below the rest); what it cuts off is said on the plot."""
    fig, ax = plt.subplots(figsize=(7, 4))
    unit = next((m.get("unit") for m in metrics if "unit" in m), "bits")
    train = [(m["step"], m["K_bits"]) for m in metrics if "K_bits" in m]
    shown = []  # the K values that set the axis
    if train:
        ax.plot(*zip(*train, strict=True), lw=1.2, label="K, training batches (raw weights)")
        last = max(s for s, _ in train)
        shown += [k for s, k in train if s >= 0.1 * last] or [k for _, k in train]
    for weights, marker in (("ema", "o"), ("raw", "s")):
        pts = [
            e
            for e in evals
            if e.get("weights", "ema") == weights and "K_bits" in e and e.get("split", "test") == "test"
        ]
        if pts:
            err = [2 * e.get("stderr_bits", 0.0) for e in pts]
            k = [e["K_bits"] for e in pts]
            ax.errorbar(
                [e["step"] for e in pts],
                k,
                yerr=err,
                fmt=marker,
                capsize=3,
                label=f"K, held out ({weights} weights, ±2 SE)",
            )
            shown += [v - d for v, d in zip(k, err, strict=True) if np.isfinite(v - d)] + k
    if reference is not None and np.isfinite(reference):
        ax.axhline(reference, color="k", lw=0.8, ls=":", label=f"K in the paper ({reference:g}, P Table 1)")
        shown.append(reference)
    if truth is not None and np.isfinite(truth):
        ax.axhline(truth, color="C2", lw=0.9, ls="-.", label=f"the data's true log-likelihood ({truth:.4g})")
        shown.append(truth)
    shown = [v for v in shown if np.isfinite(v)]
    if shown:
        lo, hi = min(shown), max(shown)
        pad = 0.08 * (hi - lo) if hi > lo else max(0.1, 0.05 * abs(hi))
        lowest = min((k for _, k in train if np.isfinite(k)), default=lo)
        ax.set_ylim(lo - pad, hi + pad)
        if lowest < lo - pad:
            ax.text(
                0.01,
                0.02,
                f"early steps below the axis (down to {lowest:.4g})",
                transform=ax.transAxes,
                fontsize=7,
                color="0.3",
            )
    ax.set_xlabel("step")
    ax.set_ylabel(f"K ({unit})")
    lr = [(m["step"], m["lr"]) for m in metrics if "lr" in m]
    if lr:
        ax2 = ax.twinx()
        ax2.plot(*zip(*lr, strict=True), color="0.6", lw=0.8, ls="--")
        ax2.set_ylabel("learning rate (dashed)", color="0.4")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
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


def run_curve(
    run_dir: Path, path: Path, title: str = "", extra: dict | None = None, reference: float | None = None
) -> Path:
    """The training curve of a run directory: metrics.jsonl and evals/index.json, plus `extra` (an
    evaluation not yet recorded, e.g. the one `reproduce` is about to write). ValueError: no records."""
    metrics = read_jsonl(Path(run_dir) / "metrics.jsonl")
    if not any("K_bits" in m for m in metrics):
        raise ValueError(f"{Path(run_dir) / 'metrics.jsonl'}: no training records of K to plot")
    evals = held_out_evaluations(run_dir)
    if extra is not None and isinstance(extra.get("step"), int) and extra not in evals:
        evals.append(extra)
    truth = (extra or {}).get("true_loglik_bits")
    return training_curve(metrics, evals, path, title, reference, truth)


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
    mark = "." if len(t) <= 60 else None
    for betas, name, style in (
        (learned, "learned", {"color": "C1", "lw": 2.2}),
        (initial, "initial", {"color": "k", "lw": 0.9, "ls": "--"}),
    ):
        a.plot(t, betas[1:], marker=mark, label=name, **style)
        b.plot(t, np.cumprod(1 - betas[1:]), marker=mark, label=name, **style)
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
