"""K of a respaced chain (iDDPM §4), term by term, beside the full chain's on the same examples."""

from __future__ import annotations

from collections.abc import Callable

import torch

from thermodiff.diffusion.bound import BoundTerms, mean_and_stderr, to_bits
from thermodiff.diffusion.respace import Respacing, Spacing
from thermodiff.evaluation.estimate import draws_text, evaluate_bound, terms_bits
from thermodiff.model.assemble import DiffusionModel


def respaced_section(
    model: DiffusionModel,
    x: torch.Tensor,
    full: BoundTerms,
    steps: Spacing,
    per: float,
    truth_bits: torch.Tensor | None = None,
    exact: bool = True,
    batch: int = 2000,
    device: str = "cpu",
    draws: int = 1,
    grid: Callable[[Spacing, BoundTerms], dict] | None = None,
) -> dict:
    """The `respaced` block of the evaluation JSON: K of the chain keeping `steps` on the examples x that
    gave the full chain's terms `full`, with the paired difference to it (same examples: its standard error
    is that of the per-example differences). grid: (steps, the chain's terms) -> the 8-bit figures
    (nll_bits_per_dim on the grid, the dequantized bound), as the full chain's are computed. truth_bits:
    the data's true log-density of x in bits per example, where known (the gap to it is reported)."""
    respacing = Respacing.of(model.schedule.T, steps)
    terms, per_t = evaluate_bound(model, x, exact, batch, device=device, draws=draws, steps=steps)
    K, K_se = mean_and_stderr(to_bits(terms.K) / per)
    gap_null, gap_null_se = mean_and_stderr(to_bits(terms.K - terms.log_null) / per)
    diff, diff_se = mean_and_stderr(to_bits(terms.K - full.K) / per)
    out = {
        "steps": str(steps),
        "n_steps": respacing.K,
        "kept_steps": list(respacing.kept),
        "K_bits": K,
        "stderr_bits": K_se,
        "K_minus_Lnull_bits": gap_null,
        "K_minus_Lnull_stderr_bits": gap_null_se,
        "minus_full_K_bits": diff,
        "minus_full_K_stderr_bits": diff_se,
        "t_draws": draws_text(exact, draws),
        "terms_bits": terms_bits(terms, model.kernel().t_first, per),
    }
    if per_t is not None:
        out["kl_bits_by_step"] = [round(v, 6) for v in (to_bits(per_t) / per).tolist()]
    if grid is not None:
        out.update(grid(steps, terms))
    if truth_bits is not None:
        gap, gap_se = mean_and_stderr(truth_bits - to_bits(terms.K).cpu())
        out.update(gap_to_truth_bits=gap, gap_stderr_bits=gap_se)
    return out
