"""One place per name: a data set or a network registered in one call validates in a config, trains
through the public training function, loads back as a Run and evaluates (P 2.4, the bound K)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_cfg
from torch import nn

from thermodiff import (
    Run,
    continuous_dataset,
    load_dataset,
    load_run,
    load_toml,
    register_data,
    register_net,
    report,
    train,
)
from thermodiff.data import DATASETS
from thermodiff.data.root import data_root
from thermodiff.errors import ConfigError, DataError
from thermodiff.nets import NETS


def ring(cfg):
    """Points on the unit circle with Gaussian radial noise data.sigma (no known density)."""
    g = torch.Generator().manual_seed(cfg.seed)
    angle = 2 * math.pi * torch.rand(cfg.n_train + cfg.n_test, generator=g, dtype=torch.float64)
    radius = 1 + cfg.sigma * torch.randn(angle.shape, generator=g, dtype=torch.float64)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return continuous_dataset(x[: cfg.n_train], x[cfg.n_train :], "bits/example")


class LinearNet(nn.Module):
    """raw = A [x, t / T] + b: the smallest network that sees x_t and t."""

    def __init__(self, d: int, T: int, out_channels: int):
        super().__init__()
        self.T, self.lin = T, nn.Linear(d + 1, out_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([x, t[:, None].to(x.dtype) / self.T], dim=1))


def linear_net(cfg, shape, T, out_channels, seed):
    return LinearNet(math.prod(shape), T, out_channels)


@pytest.fixture
def registered():
    """Registers `test_ring` (data) and `test_linear` (network), and removes them afterwards."""
    register_data("test_ring", ring, "vectors")
    register_net("test_linear", linear_net, "vectors")
    yield
    del DATASETS["test_ring"], NETS["test_linear"]


def _train_load_evaluate(tmp_path: Path, *overrides: str) -> Run:
    cfg = make_tiny_cfg("train.steps=5", *overrides)
    train(cfg, tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.step == 5 and run.path == tmp_path / "run"
    r = report(run.model, load_dataset(run.config.data), 50, False, 50)
    assert math.isfinite(r["K_bits"])
    return run


def test_a_registered_data_set_trains_loads_and_evaluates(tmp_path: Path, registered) -> None:
    run = _train_load_evaluate(tmp_path, "data.name=test_ring")
    assert run.config.data.name == "test_ring" and run.spec.kind == "continuous"


def test_a_registered_network_trains_loads_and_evaluates(tmp_path: Path, registered) -> None:
    run = _train_load_evaluate(tmp_path, "model.net=test_linear")
    assert isinstance(run.model.net, LinearNet)


def test_the_kind_rule_reads_the_registries(registered) -> None:
    with pytest.raises(ConfigError, match=r"model\.net = 'test_linear' takes vectors; data\.name = 'mnist'"):
        load_toml("mnist", ["model.net=test_linear"])
    with pytest.raises(ValueError, match="vectors, images"):
        register_data("test_bad", ring, "points")


def test_no_data_root_is_one_line_naming_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THERMODIFF_DATA")
    with pytest.raises(DataError, match=r"^binarized MNIST: data\.path is empty and THERMODIFF_DATA"):
        load_dataset(load_toml("binarized_mnist").data)
    monkeypatch.setenv("THERMODIFF_DATA", "/some/root")
    assert data_root() == Path("/some/root")
