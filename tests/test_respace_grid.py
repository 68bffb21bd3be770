"""The respaced block's 8-bit figures (evaluation/respaced.py) against a closed form: the equilibrium
reversal chain of test_images_units (first step b1 -> 1), whose respaced chain is again an equilibrium
chain with the same discrete distribution, N(0, 1) integrated over each grey level's bin; its
nll_bits_per_dim on the grid must be the exact cross-entropy -log2 P of the test images."""

from __future__ import annotations

import pytest
import torch
from test_images_units import F64, EquilibriumModel, bin_log_masses, exact_nll_bits_per_dim, uniform_images

from thermodiff.data.images import image_dataset
from thermodiff.diffusion.respace import Respacing
from thermodiff.evaluation.heldout import report


class RespacedEquilibriumModel(EquilibriumModel):
    """The equilibrium reversal chain, respaced (what report(steps=) needs of a model)."""

    def chain(self, steps=None, net=None, graphed=False):
        kernel = self.kernel()
        if steps is not None:
            kernel = Respacing.of(kernel.T, steps).kernel(kernel)
        return kernel, kernel.equilibrium_reversal


def test_respaced_nll_bits_per_dim_on_the_grid_is_the_exact_cross_entropy() -> None:
    shape, n = (1, 3, 3), 1200
    ds = image_dataset(uniform_images(3000, shape, 7), uniform_images(n, shape, 8))
    betas = torch.tensor([0.0, 1.0 - 1e-6, 0.3, 0.5, 0.2, 0.6], dtype=F64)  # T = 5
    r = report(RespacedEquilibriumModel(betas), ds, n, exact=True, batch=600, steps="list:3,5")
    raw = ds.scaling.invert(ds.test).round().to(torch.uint8)
    exact = exact_nll_bits_per_dim(raw, bin_log_masses(ds.scaling, shape)).mean().item()
    s = r["respaced"]
    assert s["kept_steps"] == [1, 3, 5]
    assert s["nll_bits_per_dim"] == pytest.approx(exact, abs=1e-4)
    assert r["nll_bits_per_dim"] == pytest.approx(exact, abs=1e-4)
    assert s["nll_stderr_bits_per_dim"] > 0 and s["nll_bits_per_dim"] > 8.0
