"""Every bundled config (src/thermodiff/configs) validates, builds its model for its data's shape and
runs one reverse-step call, so a config can not rot unnoticed until someone trains it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import torch

import thermodiff
from thermodiff.config import load_toml
from thermodiff.config.rules import warnings_for
from thermodiff.diffusion.steps import FullGaussianStep
from thermodiff.evaluation.experiments import EXPERIMENTS
from thermodiff.model.assemble import build_model

BUNDLED = sorted(p.stem for p in (Path(thermodiff.__file__).parent / "configs").glob("*.toml"))


def data_shape(cfg) -> tuple[int, ...]:
    """The shape of one example, from the config alone (no data files needed)."""
    s = cfg.data.image_size
    shapes = {
        "swiss_roll": (2,),
        "heartbeat": (20,),
        "mnist": (1, 28, 28),
        "binarized_mnist": (1, 28, 28),
        "cifar10": (3, 32, 32),
        "dead_leaves": (1, s, s),
        "bark": (1, s, s),
    }
    return shapes[cfg.data.name]


def test_the_bundled_configs_are_there() -> None:
    for name in ("swiss_roll", "heartbeat", "binarized_mnist", "dead_leaves", "bark", "mnist", "cifar10"):
        assert name in BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_config_builds_and_steps(name: str) -> None:
    cfg = load_toml(name)
    shape = data_shape(cfg)
    if cfg.train.task != "diffusion":  # a noisy classifier p(y | x_t, t): logits for 10 classes
        from thermodiff.nets.classifier import build_classifier

        logits = build_classifier(cfg.model, shape, 10, cfg.train.seed)(
            torch.zeros(2, *shape), torch.tensor([0, 5])
        )
        assert logits.shape == (2, 10) and torch.isfinite(logits).all()
        return
    model = build_model(cfg, shape, p_bar=0.2)
    kernel = model.kernel()
    x = kernel.prior_sample((2, *shape))
    t = torch.tensor([kernel.t_first, kernel.T])
    step = model.model_fn(kernel)(x, t)
    params = [getattr(step, f.name) for f in fields(step)]
    if isinstance(step, FullGaussianStep):  # full covariance: (B, d, d) scale_tril
        assert step.scale_tril.shape == (2, shape[0], shape[0])
    else:
        assert all(p.shape == x.shape for p in params), name
    assert all(torch.isfinite(p).all() for p in params), name


CPU_SIZED = [name for name in BUNDLED if name.endswith("_cpu")]
TIMING = re.compile(
    r"# Process CPU time on .+, one thread: ([\d.]+) s a training step;\s*#?\s*"
    r"([\d,]+) s in all for its ([\d,]+) steps"
)


def test_the_image_configs_have_cpu_sized_variants() -> None:
    for name in ("mnist", "dead_leaves", "bark", "cifar10", "mnist_unet"):
        assert f"{name}_cpu" in CPU_SIZED


@pytest.mark.parametrize("name", CPU_SIZED)
def test_cpu_sized_config_says_its_measured_cpu_time(name: str) -> None:
    """A CPU-sized variant names its bundled base and opens with its measured process CPU time, per
    training step and in all for the steps it trains (re-measure when train.steps changes)."""
    assert name.removesuffix("_cpu") in BUNDLED
    text = (Path(thermodiff.__file__).parent / "configs" / f"{name}.toml").read_text()
    match = TIMING.match(text)
    assert match, f"{name}.toml does not open with its measured CPU time"
    per_step, total, steps = float(match[1]), int(match[2].replace(",", "")), int(match[3].replace(",", ""))
    cfg = load_toml(name)
    assert steps == cfg.train.steps and 0 < per_step * steps <= total
    assert not warnings_for(cfg)


@pytest.mark.parametrize("budget", ["quick", "full"])
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_loads(name: str, budget: str) -> None:
    """reproduce's configs validate; a quick image experiment is its CPU-sized config as bundled."""
    config, overrides = EXPERIMENTS[name][budget]
    cfg = load_toml(config, list(overrides))
    assert not warnings_for(cfg)
    if budget == "quick" and cfg.data.name not in ("swiss_roll", "heartbeat"):
        assert config in CPU_SIZED and not overrides
