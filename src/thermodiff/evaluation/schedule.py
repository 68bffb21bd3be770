"""A learned beta schedule (P 2.4.1) beside the schedule it was initialised to, for its figure."""

from __future__ import annotations

import numpy as np

from thermodiff.diffusion.schedules import make_schedule
from thermodiff.errors import ThermodiffError
from thermodiff.run.load import Run


def learned_and_initial(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(beta_0..beta_T as the run holds them, beta_0..beta_T as training started them: learned_init)."""
    d = run.config.diffusion
    if not run.model.schedule.learnable:
        raise ThermodiffError("the beta schedule of this run is fixed, not learned")
    # the learnable schedule at its start: learned_init with the clamp training applies to beta_2..beta_T
    initial = make_schedule("learned", d.T, d.beta_1, d.beta_max, d.learned_init).betas().detach()
    learned = run.model.schedule.betas().detach()
    return learned.cpu().numpy(), initial.cpu().numpy()
