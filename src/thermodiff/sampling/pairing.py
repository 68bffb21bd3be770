"""What a multiplier r(x) is (P §2.5, App. C), and the one check that it fits the model's reverse step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor

from thermodiff.diffusion.steps import FullGaussianStep, Step
from thermodiff.errors import ThermodiffError


@runtime_checkable
class Multiplier(Protocol):
    """r tilting one reverse step p(x_{t-1}|x_t) to p r; takes and returns a step of type `accepts`."""

    accepts: type[Step]

    def __call__(self, step: Step, x_t: Tensor, t: Tensor) -> Step: ...


def check_pairing(step_type: type[Step], multipliers: Sequence[Multiplier]) -> None:
    """Refuse, before the chain runs, a multiplier that does not tilt the model's reverse step type."""
    if not isinstance(multipliers, (list, tuple)):
        raise ThermodiffError(f"multipliers must be a list, not {type(multipliers).__name__}")
    if multipliers and issubclass(step_type, FullGaussianStep):
        raise ThermodiffError("conditioning needs a diagonal reverse covariance (not variance = full)")
    for r in multipliers:
        accepts = getattr(r, "accepts", None)
        if accepts is None or not issubclass(step_type, accepts):
            what = "no step type" if accepts is None else f"a {accepts.__name__}"
            raise ThermodiffError(
                f"{type(r).__name__} multiplies {what}; this model's reverse step is a {step_type.__name__}"
            )
