"""K on held-out data with its standard error, term by term, in bits (DESIGN.md 2)."""

from __future__ import annotations

import math

import torch

from thermodiff.data import Dataset
from thermodiff.diffusion.bound import (
    BoundTerms,
    bound_exact,
    bound_stochastic,
    mean_and_stderr,
    to_bits,
)
from thermodiff.model import DiffusionModel, dims


def _concat(parts: list[BoundTerms]) -> BoundTerms:
    fields = ("kl", "prior", "edge", "entropy_T", "entropy_1", "log_null")
    return BoundTerms(**{f: torch.cat([getattr(p, f) for p in parts]) for f in fields})


@torch.no_grad()
def evaluate_bound(
    model: DiffusionModel,
    x: torch.Tensor,
    exact: bool = True,
    batch: int = 2000,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[BoundTerms, torch.Tensor | None]:
    """Per-example terms of K on x (model space); with exact=True every t, and the mean KL per t."""
    gen = torch.Generator(device).manual_seed(seed)
    kernel = model.kernel()
    fn = model.model_fn(kernel)
    parts, per_t = [], None
    for xb in x.split(batch):
        xb = xb.to(device)
        if exact:
            terms, kl_t = bound_exact(kernel, fn, xb, gen)
            per_t = kl_t.sum(1) if per_t is None else per_t + kl_t.sum(1)
        else:
            terms, _ = bound_stochastic(kernel, fn, xb, gen)
        parts.append(terms)
    return _concat(parts), (per_t / x.shape[0] if per_t is not None else None)


def report(
    model: DiffusionModel,
    ds: Dataset,
    n: int,
    exact: bool,
    batch: int = 2000,
    device: str = "cpu",
    split: str = "test",
    reference: dict | None = None,
) -> dict:
    """The evaluation JSON (DESIGN.md 3): K, K - L_null, L_null, stderr, per-dimension, terms, truth."""
    x = (ds.test if split == "test" else ds.train)[:n]
    terms, per_t = evaluate_bound(model, x, exact, batch, device=device)
    d = dims(ds.spec.shape)
    K, K_se = mean_and_stderr(to_bits(terms.K))
    gap_to_null, gap_se = mean_and_stderr(to_bits(terms.K - terms.log_null))
    L_null, _ = mean_and_stderr(to_bits(terms.log_null))
    out = {
        "K_bits": K,
        "stderr_bits": K_se,
        "K_minus_Lnull_bits": gap_to_null,
        "K_minus_Lnull_stderr_bits": gap_se,
        "L_null_bits": L_null,
        "unit": ds.spec.unit,
        "K_bits_per_dim": K / d,
        "dims": d,
        "n_examples": int(x.shape[0]),
        "t_draws": "all t (exact)" if exact else "one uniform t per example",
        "exact": exact,
        "split": split,
        "T": model.schedule.T,
        "kernel": model.kernel_name,
        "terms_bits": {
            "kl_sum_t2_to_T": -mean_and_stderr(to_bits(terms.kl))[0],
            "prior": mean_and_stderr(to_bits(terms.prior))[0],
            "edge": mean_and_stderr(to_bits(terms.edge))[0],
            "H_q(X_T|X_0)": mean_and_stderr(to_bits(terms.entropy_T))[0],
            "-H_q(X_1|X_0)": -mean_and_stderr(to_bits(terms.entropy_1))[0],
            "cross_entropy (paper: -H_p(X_T))": mean_and_stderr(to_bits(terms.cross))[0],
        },
    }
    if per_t is not None:
        out["kl_bits_by_t"] = [round(v, 6) for v in to_bits(per_t).tolist()]
    if ds.true_log_prob is not None:
        truth = to_bits(ds.true_log_prob(x))
        tr, tr_se = mean_and_stderr(truth)
        gap, gap_se = mean_and_stderr(truth - to_bits(terms.K).cpu())
        out.update(
            true_loglik_bits=tr,
            true_loglik_stderr_bits=tr_se,
            gap_to_truth_bits=gap,
            gap_stderr_bits=gap_se,
        )
    if reference:
        out["paper"] = {k: v for k, v in reference.items() if not math.isnan(v)}
    return out
