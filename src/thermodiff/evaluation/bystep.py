"""Where the bits are spent: K's terms by step t (P eq. 14), in bits per the data's unit, averaged over
held-out examples, exact over t (every step evaluated, one x_t draw per step and example)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from thermodiff.data import Dataset, dequantize
from thermodiff.diffusion.bound import mean_and_stderr, to_bits
from thermodiff.evaluation.estimate import evaluate_bound
from thermodiff.model.assemble import DiffusionModel


@dataclass(frozen=True)
class StepBits:
    """K = -sum(kl) + prior + edge, each a mean over `n` examples in bits per unit; kl[t] is the KL
    term of step t (t = 0..T; zero below t_first, the first learned step)."""

    kl: list[float]
    prior: float
    edge: float
    K: float
    t_first: int
    n: int

    @property
    def total(self) -> float:
        """-sum_t kl[t] + prior + edge: K rebuilt from its parts."""
        return -sum(self.kl) + self.prior + self.edge


def kl_by_step(
    model: DiffusionModel,
    x: torch.Tensor,
    per: float = 1.0,
    batch: int = 2000,
    seed: int = 0,
    device: str = "cpu",
) -> StepBits:
    """The terms of K on x (model space) by step, exact over t, in bits / `per` (evaluate_bound)."""
    terms, per_t = evaluate_bound(model, x, exact=True, batch=batch, seed=seed, device=device)

    def bits(v: torch.Tensor) -> float:
        return mean_and_stderr(to_bits(v) / per)[0]

    return StepBits(
        kl=(to_bits(per_t) / per).tolist(),
        prior=bits(terms.prior),
        edge=bits(terms.edge),
        K=bits(terms.K),
        t_first=model.kernel().t_first,
        n=int(x.shape[0]),
    )


def held_out_by_step(
    model: DiffusionModel, ds: Dataset, n: int, batch: int = 2000, device: str = "cpu"
) -> StepBits:
    """kl_by_step on the first n test examples, in the units `evaluate` reports (8-bit images
    dequantized with the same seed, bits per pixel where the data's unit is)."""
    x = ds.test[:n]
    if ds.spec.kind == "image8":
        x = dequantize(x, ds.scaling.scale, torch.Generator().manual_seed(1))
    return kl_by_step(model, x, ds.spec.units_per_example, batch, device=device)


def from_evaluation(evaluation: dict, t_first: int) -> StepBits | None:
    """The same numbers from an exact evaluation's JSON (heldout.report: kl_bits_by_t, terms_bits); None
    when it has none (a drawn-t evaluation)."""
    kl, terms = evaluation.get("kl_bits_by_t"), evaluation.get("terms_bits", {})
    if not kl or "prior" not in terms or "edge" not in terms:
        return None
    return StepBits(
        kl=[float(v) for v in kl],
        prior=float(terms["prior"]),
        edge=float(terms["edge"]),
        K=float(evaluation["K_bits"]),
        t_first=t_first,
        n=int(evaluation["n_examples"]),
    )
