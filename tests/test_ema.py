"""The weights' moving average warms up (TensorFlow's num_updates, latent diffusion's LitEma): after k
updates the initial parameters keep at most 10! (k + 1)! / (k + 10)! of the average, whatever train.ema."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_cfg

from thermodiff.run.checkpoint import latest_checkpoint, load_checkpoint
from thermodiff.training.ema import ema_decay, ema_update, ema_weight_of_start
from thermodiff.training.train import train


def closed_form(k: int) -> float:
    """prod_{j=1..k} (1 + j) / (10 + j) = 10! (k + 1)! / (k + 10)!: the start's weight in the warm-up."""
    return math.factorial(10) * math.factorial(k + 1) / math.factorial(k + 10)


@pytest.mark.parametrize("ema", [0.99, 0.999, 0.9999])
def test_start_weight_after_k_updates_is_the_closed_form_and_measured(ema: float) -> None:
    """An average started at 1 and fed zeros holds exactly the start's weight: it matches the product of
    the decays, which matches the closed form while (1 + k) / (10 + k) < ema, and stays below it after."""
    cap = math.ceil((10 * ema - 1) / (1 - ema))  # the first k at which the decay reaches ema
    avg = [torch.ones(3, dtype=torch.float64)]
    zeros = [torch.zeros(3, dtype=torch.float64)]
    for k in range(1, 301):
        ema_update(avg, zeros, ema_decay(ema, k))
        want = ema_weight_of_start(ema, k)
        assert avg[0][0].item() == pytest.approx(want, rel=1e-9)
        assert want <= closed_form(k) * (1 + 1e-12)
        if k < cap:
            assert want == pytest.approx(closed_form(k), rel=1e-12)
    assert ema_weight_of_start(ema, 100) < 2.2e-12  # the stated fraction: 10! 101! / 110! = 2.15e-12
    # without the warm-up a 0.999 average still holds 90% of the start after 100 steps: the trap
    assert ema_weight_of_start(0.999, 100, warmup=False) == pytest.approx(0.999**100)
    assert ema_decay(ema, 10**9) == ema  # warmed up: the configured decay


def test_the_loop_averages_with_the_warm_up(tmp_path: Path) -> None:
    """One training step: the saved average is 2/11 of the initial weights + 9/11 of the trained ones
    (the first decay, (1 + 1) / (10 + 1)); with train.ema_warmup = false it is the plain ema."""

    def weights(run: Path) -> dict[str, torch.Tensor]:
        return load_checkpoint(latest_checkpoint(run))[0]

    train(make_tiny_cfg("train.steps=0"), tmp_path / "init")
    init = weights(tmp_path / "init")
    for warm, decay in ((True, 2 / 11), (False, 0.999)):
        run = tmp_path / f"one_{warm}"
        train(make_tiny_cfg("train.steps=1", "train.ema=0.999", f"train.ema_warmup={warm}"), run)
        w = weights(run)
        names = [k for k in w if k.startswith("net.")]
        assert names and any(not torch.equal(w[k], init[k]) for k in names)  # the step moved the weights
        for k in names:
            want = decay * init[k].double() + (1 - decay) * w[k].double()
            assert torch.allclose(w["ema." + k].double(), want, atol=1e-6), k
