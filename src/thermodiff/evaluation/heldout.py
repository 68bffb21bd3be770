"""K on held-out data with its standard error, term by term, in bits (P eq. 14; bits/dim as in DDPM)."""

from __future__ import annotations

import math

import torch

from thermodiff.data import Dataset, dequantize
from thermodiff.diffusion.bound import (
    BoundTerms,
    mean_and_stderr,
    to_bits,
)
from thermodiff.diffusion.respace import Spacing
from thermodiff.errors import ThermodiffError, first_line
from thermodiff.evaluation.estimate import draws_text, evaluate_bound, terms_bits
from thermodiff.evaluation.respaced import respaced_section
from thermodiff.model.args import check_choice, check_count, check_device
from thermodiff.model.assemble import DiffusionModel, dims


def report(
    model: DiffusionModel,
    ds: Dataset,
    n: int,
    exact: bool,
    batch: int = 2000,
    device: str = "cpu",
    split: str = "test",
    reference: dict | None = None,
    draws: int = 1,
    steps: Spacing | None = None,
) -> dict:
    """The evaluation JSON (`evaluate --json`): K, K - L_null, L_null, stderr, per dimension, terms, truth.
    draws: uniform t per example when not exact, else x_t draws per step (their mean: the same
    expectation, a smaller stderr). steps: also K of the respaced chain (`respaced`, respaced.py)."""
    check_count("n", n)
    check_count("batch", batch)
    check_count("draws", draws, 1, 10_000)
    check_choice("split", split, ("test", "train"))
    device = check_device(device)
    x = (ds.test if split == "test" else ds.train)[:n]
    if tuple(x.shape[1:]) != tuple(ds.spec.shape):
        raise ThermodiffError(f"the data's examples have shape {tuple(x.shape[1:])}, not {ds.spec.shape}")
    grid_x = x
    if ds.spec.kind == "image8":  # paper units: dequantized, continuous (P 3.2, Theis et al. 2015)
        x = dequantize(x, ds.scaling.scale, torch.Generator().manual_seed(1))
    try:
        terms, per_t = evaluate_bound(model, x, exact, batch, device=device, draws=draws)
    except RuntimeError as e:  # the network's input layer refuses examples of another shape
        if "shape" not in str(e) and "size" not in str(e) or "allocate" in str(e):
            raise
        raise ThermodiffError(
            f"the data ({ds.spec.kind}, examples of shape {ds.spec.shape}) do not fit this model's "
            f"network ({first_line(e)})"
        ) from None
    d = dims(ds.spec.shape)
    per = ds.spec.units_per_example
    K, K_se = mean_and_stderr(to_bits(terms.K) / per)
    gap_to_null, gap_se = mean_and_stderr(to_bits(terms.K - terms.log_null) / per)
    L_null, _ = mean_and_stderr(to_bits(terms.log_null) / per)
    t_first = model.kernel().t_first  # 1: the network models the last reverse step too
    out = {
        "K_bits": K,
        "stderr_bits": K_se,
        "K_minus_Lnull_bits": gap_to_null,
        "K_minus_Lnull_stderr_bits": gap_se,
        "L_null_bits": L_null,
        "unit": ds.spec.unit,
        "K_bits_per_dim": K * per / d,
        "dims": d,
        "units_per_example": per,
        "n_examples": int(x.shape[0]),
        "t_draws": draws_text(exact, draws),
        "exact": exact,
        "split": split,
        "T": model.schedule.T,
        "kernel": model.kernel_name,
        "first_step": "learned" if t_first == 1 else "fixed (P App. B.2)",
        "terms_bits": terms_bits(terms, t_first, per),
    }
    if per_t is not None:
        out["kl_bits_by_t"] = [round(v, 6) for v in (to_bits(per_t) / per).tolist()]
    truth = None if ds.true_log_prob is None else to_bits(ds.true_log_prob(x))
    if truth is not None:
        tr, tr_se = mean_and_stderr(truth)
        gap, gap_se = mean_and_stderr(truth - to_bits(terms.K).cpu())
        out.update(
            true_loglik_bits=tr,
            true_loglik_stderr_bits=tr_se,
            gap_to_truth_bits=gap,
            gap_stderr_bits=gap_se,
        )
    if ds.spec.kind == "image8":
        out.update(_grid_figures(model, ds, grid_x, terms, exact, batch, device, draws))
    if ds.spec.kind == "binary":  # binary-image literature: NLL bound in nats per example
        nll, nll_se = mean_and_stderr(-terms.K.cpu())
        out.update(nll_nats=nll, nll_stderr_nats=nll_se, nll_bits_per_dim=nll / math.log(2) / d)
    if steps is not None:
        ev = {"exact": exact, "batch": batch, "device": device, "draws": draws}
        if ds.spec.kind == "image8":  # the same figures for the respaced chain
            ev["grid"] = lambda s, t: _grid_figures(model, ds, grid_x, t, exact, batch, device, draws, s)
        out["respaced"] = respaced_section(model, x, terms, steps, per, truth, **ev)
    if reference:
        out["paper"] = {k: v for k, v in reference.items() if not math.isnan(v)}
    return out


def _grid_figures(
    model, ds: Dataset, x: torch.Tensor, terms: BoundTerms, exact, batch, device, draws, steps=None
) -> dict:
    """8-bit images: the NLL bound in bits/dim on the 0..255 grid through a discretized decoder
    (Ho et al. 2020), and the dequantized continuous bound in the same raw units (Theis et al. 2015),
    of the full chain or of the respaced one keeping `steps` (terms: that chain's)."""
    d = dims(ds.spec.shape)
    s = ds.scaling
    lo = s.apply(torch.zeros(1, *ds.spec.shape, dtype=torch.float64))
    hi = s.apply(torch.full((1, *ds.spec.shape), 255.0, dtype=torch.float64))
    grid = (s.scale, lo, hi)
    disc, _ = evaluate_bound(model, x, exact, batch, device=device, grid=grid, draws=draws, steps=steps)
    nll, nll_se = mean_and_stderr(-to_bits(disc.K) / d)
    deq, deq_se = mean_and_stderr(-to_bits(terms.K) / d - math.log2(s.scale))
    return {
        "nll_bits_per_dim": nll,
        "nll_stderr_bits_per_dim": nll_se,
        "nll_note": "8-bit grid, discretized Gaussian last step (Ho et al. 2020 convention)",
        "dequantized_nll_bits_per_dim": deq,
        "dequantized_nll_stderr_bits_per_dim": deq_se,
    }
