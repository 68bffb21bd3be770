"""The terms of K over a set of examples, batch by batch: exact over t or drawn, on a grid or not,
of the full chain or a respaced one (P eq. 14; DDPM eq. 13 for the grid), and how they are named."""

from __future__ import annotations

import torch

from thermodiff import progress
from thermodiff.diffusion.bound import (
    BoundTerms,
    bound_exact,
    bound_stochastic,
    discrete_edge,
    mean_and_stderr,
    to_bits,
)
from thermodiff.diffusion.respace import Spacing
from thermodiff.errors import ThermodiffError
from thermodiff.model.assemble import DiffusionModel

_FIELDS = ("kl", "prior", "edge", "entropy_T", "entropy_1", "log_null")


def _concat(parts: list[BoundTerms]) -> BoundTerms:
    return BoundTerms(**{f: torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS})


def _average(draws: list[BoundTerms]) -> BoundTerms:
    """Per example, the mean of independent estimates: still unbiased, with less spread over t."""
    return BoundTerms(**{f: torch.stack([getattr(d, f) for d in draws]).mean(0) for f in _FIELDS})


@torch.no_grad()
def evaluate_bound(
    model: DiffusionModel,
    x: torch.Tensor,
    exact: bool = True,
    batch: int = 2000,
    seed: int = 0,
    device: str = "cpu",
    grid: tuple[float, torch.Tensor, torch.Tensor] | None = None,
    draws: int = 1,
    steps: Spacing | None = None,
) -> tuple[BoundTerms, torch.Tensor | None]:
    """Per-example terms of K on x (model space); with exact=True every t, and the mean KL per t,
    else `draws` uniform t per example, averaged. With grid = (bin_width, lo, hi), x lies on that
    grid and the edge term is the discretized one. steps: K of the respaced chain (DiffusionModel.chain)."""
    if draws < 1:
        raise ThermodiffError(f"--draws {draws}: needs >= 1")
    gen = torch.Generator(device).manual_seed(seed)
    if steps is None:  # any model with kernel() and model_fn(): the respaced chain needs chain()
        kernel = model.kernel()
        fn = model.model_fn(kernel)
    else:
        kernel, fn = model.chain(steps)
    lo, hi = (None, None) if grid is None else (grid[1].to(device), grid[2].to(device))

    def on_grid(terms: BoundTerms, xb: torch.Tensor) -> BoundTerms:  # the discretized edge term
        if grid is not None:
            noise = kernel.noise_like(xb.double(), gen)
            terms.edge = discrete_edge(kernel, xb.double(), noise, grid[0], lo, hi)
        return terms

    calls = draws * (kernel.T + 1 - kernel.t_first) if exact else draws  # network calls per batch
    fn, ticks = progress.counted(fn, -(-x.shape[0] // batch) * calls, f"evaluate {x.shape[0]}")
    parts, per_t = [], None
    for xb in x.split(batch):
        xb = xb.to(device)
        if exact:  # `draws` x_t per step and example, averaged
            runs = [bound_exact(kernel, fn, xb, gen) for _ in range(draws)]
            kl_t = torch.stack([kl for _, kl in runs]).mean(0)
            per_t = kl_t.sum(1) if per_t is None else per_t + kl_t.sum(1)
            parts.append(_average([on_grid(terms, xb) for terms, _ in runs]))
        else:
            parts.append(
                _average([on_grid(bound_stochastic(kernel, fn, xb, gen)[0], xb) for _ in range(draws)])
            )
    if ticks is not None:
        ticks.close()
    return _concat(parts), (per_t / x.shape[0] if per_t is not None else None)


def terms_bits(terms: BoundTerms, t_first: int, per: float) -> dict:
    """K's named terms in bits per `unit`; the paper's entropy split only when step 1 is fixed."""
    out = {
        f"kl_sum_t{t_first}_to_T": -mean_and_stderr(to_bits(terms.kl) / per)[0],
        "prior": mean_and_stderr(to_bits(terms.prior) / per)[0],
        "edge": mean_and_stderr(to_bits(terms.edge) / per)[0],
    }
    if t_first == 2:
        out.update(
            {
                "H_q(X_T|X_0)": mean_and_stderr(to_bits(terms.entropy_T) / per)[0],
                "-H_q(X_1|X_0)": -mean_and_stderr(to_bits(terms.entropy_1) / per)[0],
                "cross_entropy (paper: -H_p(X_T))": mean_and_stderr(to_bits(terms.cross) / per)[0],
            }
        )
    return out


def draws_text(exact: bool, draws: int) -> str:
    if exact:
        return "all t (exact)" if draws == 1 else f"all t (exact), {draws} x_t per step, averaged"
    return "one uniform t per example" if draws == 1 else f"{draws} uniform t per example, averaged"
