"""The public functions check their arguments as the CLI does: one ThermodiffError line, before any
work, instead of a wrong number (report(n=-5) evaluating 95 of 100) or a raw error from deep inside."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import thermodiff as td
from thermodiff.errors import ThermodiffError


@pytest.fixture(scope="module")
def loaded(tiny_run: Path):
    run = td.load_run(tiny_run)
    return run, td.load_dataset(run.config.data)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"n": -5}, "n = -5"),
        ({"n": 0}, "n = 0"),
        ({"n": 2.5}, "n = 2.5"),
        ({"n": 10, "split": "valid"}, "split = 'valid'"),
        ({"n": 10, "draws": 0}, "draws = 0"),
        ({"n": 10, "batch": 0}, "batch = 0"),
        ({"n": 10, "device": "gpu"}, "device"),
    ],
)
def test_report_refuses_bad_arguments(loaded, kwargs: dict, says: str) -> None:
    run, ds = loaded
    with pytest.raises(ThermodiffError, match=None) as e:
        td.report(run.model, ds, exact=True, **kwargs)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tiny_run: Path, loaded) -> None:
    run, ds = loaded
    for call in (
        lambda: td.load_run(tiny_run, device="cuda"),
        lambda: td.report(run.model, ds, 10, True, device="cuda"),
        lambda: td.sample(run.model.kernel(), run.model.model_fn(run.model.kernel()), (2,), 4, device="cuda"),
    ):
        with pytest.raises(ThermodiffError, match="no CUDA device"):
            call()


def test_overrides_must_be_a_list_of_texts(tiny_run: Path) -> None:
    with pytest.raises(ThermodiffError, match="list of 'section.field=value' texts"):
        td.load_toml("swiss_roll", "train.steps=5")
    with pytest.raises(ThermodiffError, match="list of"):
        td.with_overrides(td.load_toml("swiss_roll"), "train.steps=5")
    assert td.load_toml("swiss_roll", ["train.steps=5"]).train.steps == 5


def test_sample_and_denoise_refuse_bad_counts(loaded) -> None:
    run, _ = loaded
    kernel = run.model.kernel()
    for n in (0, -1, True):
        with pytest.raises(ThermodiffError, match="n = "):
            td.sample(kernel, run.model.model_fn(kernel), (2,), n)
    with pytest.raises(ThermodiffError, match="noise_std"):
        td.denoise(run.model, torch.zeros(1, 2, dtype=torch.float64), float("nan"))


def test_report_on_data_of_another_shape(loaded) -> None:
    """A data set that is not the network's: named, not a matrix-shape RuntimeError."""
    run, _ = loaded
    other = td.continuous_dataset(
        torch.randn(50, 3, dtype=torch.float64), torch.randn(20, 3, dtype=torch.float64)
    )
    with pytest.raises(ThermodiffError, match="shape"):
        td.report(run.model, other, 10, True)
