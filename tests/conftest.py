"""Shared fixtures: a tiny config that trains in about a second, a tiny trained run, the data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from thermodiff.config import Config, load_toml

# The data sets are found through THERMODIFF_DATA only (thermodiff.data.root); the tests default it to
# <repo>/../shared/data, and tests that need a data set absent there skip with a reason.
if not os.environ.get("THERMODIFF_DATA"):
    os.environ["THERMODIFF_DATA"] = str(Path(__file__).resolve().parents[1].parent / "shared" / "data")
DATA_DIR = Path(os.environ["THERMODIFF_DATA"])

TINY_OVERRIDES = (
    "train.steps=30",
    "train.batch=64",
    "train.log_every=10",
    "train.ckpt_every=10",
    "data.n_train=2000",
    "data.n_test=300",
    "eval.n=300",
    "model.hidden=32",
    "data.sigma=0.05",
    "diffusion.T=10",
    "train.warmup=5",  # shorter than the run: no warm-up warning on stderr beside the errors tested
)

# The paper's multi-scale image network on 8 x 8 dead leaves, small enough to train in a second.
TINY_IMAGE_NET = (
    "data.image_size=8",
    "data.n_train=64",
    "data.n_test=16",
    "diffusion.T=12",
    "model.conv_channels=4",
    "model.conv_layers=1",
    "model.pixel_hidden=4",
    "model.n_scales=2",
    "train.batch=8",
)


def requires_data(subdir: str) -> pytest.MarkDecorator:
    """Skip a test (with a reason) when DATA_DIR/subdir is absent."""
    path = DATA_DIR / subdir
    return pytest.mark.skipif(not path.is_dir(), reason=f"data folder {path} not found (set THERMODIFF_DATA)")


def make_tiny_cfg(*extra: str) -> Config:
    """The swiss roll config shrunk to train 30 steps in about a second; `extra` overrides on top."""
    return load_toml("swiss_roll", [*TINY_OVERRIDES, *extra])


@pytest.fixture
def tiny_cfg() -> Config:
    return make_tiny_cfg()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run directory, shared read-only (copy it before changing anything)."""
    from thermodiff.training.train import train

    run = tmp_path_factory.mktemp("tiny") / "run"
    train(make_tiny_cfg(), run)
    return run
