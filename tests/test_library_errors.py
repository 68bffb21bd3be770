"""Library misuse ends in one ThermodiffError line, as the CLI's bad input does: a table of wrong
types, shapes, counts, devices and non-finite inputs through sample, denoise, inpaint, interpolate,
sample_grid, data_box and the multipliers; results that come out NaN are raised, never returned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_cfg

import thermodiff as td
from thermodiff.config import load_toml
from thermodiff.errors import NonFiniteError, ShapeError, ThermodiffError
from thermodiff.model.assemble import build_model

F64 = torch.float64


@pytest.fixture(scope="module")
def m():
    """Untrained models (their arguments are what is tested): diagonal-variance vectors of shape (2,),
    full-covariance vectors, and 8 x 8 images."""
    diag = build_model(make_tiny_cfg("diffusion.variance=learned"), (2,))
    full = build_model(make_tiny_cfg(), (2,))
    img_cfg = load_toml(
        "dead_leaves",
        [
            "data.image_size=8",
            "model.net=unet",
            "model.base=8",
            "model.mults=1",
            "model.num_res_blocks=1",
            "model.attn_resolutions=",
            "diffusion.T=10",
            "diffusion.variance=small",
        ],
    )
    img = build_model(img_cfg, (1, 8, 8))
    k = diag.kernel()
    return {"diag": diag, "full": full, "img": img, "k": k, "fn": diag.model_fn(k)}


y2 = torch.zeros(3, 2, dtype=F64)
one2 = torch.zeros(1, 2, dtype=F64)
nan2 = torch.full((1, 2), float("nan"), dtype=F64)
known = torch.ones(3, 2, dtype=torch.bool)

# (case, call on the fixture's models, the error class, words the one line must hold)
MISUSES = [
    ("sample n=0", lambda m: td.sample(m["k"], m["fn"], (2,), 0), ThermodiffError, "n = 0"),
    ("sample n text", lambda m: td.sample(m["k"], m["fn"], (2,), "4"), ThermodiffError, "n = '4'"),
    ("sample shape int", lambda m: td.sample(m["k"], m["fn"], 2, 4), ThermodiffError, "shape = 2"),
    ("sample shape zero", lambda m: td.sample(m["k"], m["fn"], (0,), 4), ThermodiffError, "positive"),
    ("sample shape not the model's", lambda m: td.sample(m["k"], m["fn"], (3,), 4), ShapeError, "(3,)"),
    (
        "sample device gpu",
        lambda m: td.sample(m["k"], m["fn"], (2,), 4, device="gpu"),
        ThermodiffError,
        "'gpu'",
    ),
    ("sample kernel None", lambda m: td.sample(None, m["fn"], (2,), 4), ThermodiffError, "kernel"),
    ("sample model_fn None", lambda m: td.sample(m["k"], None, (2,), 4), ThermodiffError, "model_fn"),
    (
        "sample x_T list",
        lambda m: td.sample(m["k"], m["fn"], (2,), 1, x_T=[[0.0, 0.0]]),
        ThermodiffError,
        "x_T must be a torch.Tensor",
    ),
    (
        "sample x_T shape",
        lambda m: td.sample(m["k"], m["fn"], (2,), 4, x_T=torch.zeros(4, 3)),
        ThermodiffError,
        "(4, 3)",
    ),
    ("sample x_T NaN", lambda m: td.sample(m["k"], m["fn"], (2,), 1, x_T=nan2), ThermodiffError, "NaN"),
    (
        "sample generator int",
        lambda m: td.sample(m["k"], m["fn"], (2,), 4, generator=5),
        ThermodiffError,
        "generator",
    ),
    (
        "sample multipliers int",
        lambda m: td.sample(m["k"], m["fn"], (2,), 4, multipliers=5),
        ThermodiffError,
        "list",
    ),
    (
        "sample multiplier int",
        lambda m: td.sample(m["k"], m["fn"], (2,), 4, multipliers=[5]),
        ThermodiffError,
        "int multiplies",
    ),
    ("denoise model None", lambda m: td.denoise(None, y2, 1.0), ThermodiffError, "DiffusionModel"),
    ("denoise y numpy", lambda m: td.denoise(m["diag"], np.zeros((3, 2)), 1.0), ThermodiffError, "ndarray"),
    (
        "denoise y 1-D",
        lambda m: td.denoise(m["diag"], torch.zeros(2, dtype=F64), 1.0),
        ThermodiffError,
        "(2,)",
    ),
    (
        "denoise y empty",
        lambda m: td.denoise(m["diag"], torch.zeros(0, 2, dtype=F64), 1.0),
        ThermodiffError,
        "N >= 1",
    ),
    (
        "denoise y shape",
        lambda m: td.denoise(m["diag"], torch.zeros(3, 5, dtype=F64), 1.0),
        ShapeError,
        "(5,)",
    ),
    ("denoise y NaN", lambda m: td.denoise(m["diag"], nan2, 1.0), ThermodiffError, "y holds NaN"),
    ("denoise noise 0", lambda m: td.denoise(m["diag"], y2, 0.0), ThermodiffError, "noise_std = 0.0"),
    ("denoise noise text", lambda m: td.denoise(m["diag"], y2, "1"), ThermodiffError, "noise_std = '1'"),
    (
        "denoise noise inf",
        lambda m: td.denoise(m["diag"], y2, float("inf")),
        ThermodiffError,
        "noise_std = inf",
    ),
    (
        "denoise eta 2",
        lambda m: td.denoise(m["diag"], y2, 1.0, sampler="ddim", eta=2.0),
        ThermodiffError,
        "eta = 2.0",
    ),
    ("denoise full covariance", lambda m: td.denoise(m["full"], y2, 1.0), ThermodiffError, "diagonal"),
    (
        "inpaint mask shape",
        lambda m: td.inpaint(m["diag"], y2, torch.ones(3, 5, dtype=torch.bool)),
        ShapeError,
        "(3, 5)",
    ),
    ("inpaint mask list", lambda m: td.inpaint(m["diag"], y2, [[1, 1]] * 3), ShapeError, "list"),
    (
        "inpaint mask 0.5",
        lambda m: td.inpaint(m["diag"], y2, torch.full((3, 2), 0.5)),
        ThermodiffError,
        "only 0 and 1",
    ),
    (
        "inpaint values list",
        lambda m: td.inpaint(m["diag"], [[0.0, 0.0]], known[:1]),
        ThermodiffError,
        "values must be",
    ),
    (
        "inpaint values NaN",
        lambda m: td.inpaint(m["diag"], nan2, known[:1]),
        ThermodiffError,
        "values holds NaN",
    ),
    ("inpaint schedule", lambda m: td.inpaint(m["diag"], y2, known, schedule="x"), ThermodiffError, "'x'"),
    (
        "inpaint image without batch",
        lambda m: td.inpaint(
            m["img"], torch.zeros(1, 8, 8, dtype=F64), torch.ones(1, 8, 8, dtype=torch.bool)
        ),
        ShapeError,
        "(8, 8)",
    ),
    (
        "interpolate t > T",
        lambda m: td.interpolate(m["k"], m["fn"], one2, one2, 99, [0, 1]),
        ThermodiffError,
        "t = 99",
    ),
    (
        "interpolate t 2.5",
        lambda m: td.interpolate(m["k"], m["fn"], one2, one2, 2.5, [0, 1]),
        ThermodiffError,
        "t = 2.5",
    ),
    (
        "interpolate t text",
        lambda m: td.interpolate(m["k"], m["fn"], one2, one2, "5", [0, 1]),
        ThermodiffError,
        "t = '5'",
    ),
    (
        "interpolate lambdas empty",
        lambda m: td.interpolate(m["k"], m["fn"], one2, one2, 5, []),
        ShapeError,
        "lambdas",
    ),
    (
        "interpolate lambdas NaN",
        lambda m: td.interpolate(m["k"], m["fn"], one2, one2, 5, [float("nan")]),
        ThermodiffError,
        "lambdas holds NaN",
    ),
    (
        "interpolate lambdas text",
        lambda m: td.interpolate(m["k"], m["fn"], one2, one2, 5, "ab"),
        ThermodiffError,
        "lambdas must be",
    ),
    (
        "interpolate x list",
        lambda m: td.interpolate(m["k"], m["fn"], [[0.0, 0.0]], one2, 5, [0, 1]),
        ThermodiffError,
        "x_a must be",
    ),
    (
        "interpolate x NaN",
        lambda m: td.interpolate(m["k"], m["fn"], nan2, one2, 5, [0, 1]),
        ThermodiffError,
        "x_a holds NaN",
    ),
    (
        "interpolate two examples",
        lambda m: td.interpolate(m["k"], m["fn"], y2, y2, 5, [0, 1]),
        ThermodiffError,
        "expected one example",
    ),
    (
        "interpolate shapes differ",
        lambda m: td.interpolate(m["k"], m["fn"], one2, torch.zeros(1, 3), 5, [0, 1]),
        ShapeError,
        "(1, 3)",
    ),
    (
        "interpolate not the model's shape",
        lambda m: td.interpolate(
            m["k"], m["fn"], torch.zeros(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64), 5, [0, 1]
        ),
        ShapeError,
        "(3,)",
    ),
    (
        "sample_grid n=-1",
        lambda m: td.sample_grid(m["img"], _spec((1, 8, 8)), _scaling(), "g.png", n=-1),
        ThermodiffError,
        "n = -1",
    ),
    (
        "sample_grid seed text",
        lambda m: td.sample_grid(m["img"], _spec((1, 8, 8)), _scaling(), "g.png", seed="a"),
        ThermodiffError,
        "seed = 'a'",
    ),
    (
        "sample_grid device gpu",
        lambda m: td.sample_grid(m["img"], _spec((1, 8, 8)), _scaling(), "g.png", device="gpu"),
        ThermodiffError,
        "'gpu'",
    ),
    (
        "sample_grid a folder",
        lambda m: td.sample_grid(m["img"], _spec((1, 8, 8)), _scaling(), ".", n=2),
        ThermodiffError,
        "directory",
    ),
    (
        "sample_grid vectors",
        lambda m: td.sample_grid(m["diag"], _spec((2,)), _scaling(), "g.png"),
        ThermodiffError,
        "images",
    ),
    ("data_box units text", lambda m: td.data_box(m["diag"], "units"), ThermodiffError, "Units"),
    (
        "GaussianObservation y NaN",
        lambda m: td.GaussianObservation(nan2, 1.0),
        ThermodiffError,
        "y holds NaN",
    ),
    (
        "GaussianObservation y text",
        lambda m: td.GaussianObservation("abc", 1.0),
        ThermodiffError,
        "y must be",
    ),
    (
        "GaussianObservation T 2.5",
        lambda m: td.GaussianObservation(y2, 1.0, schedule="annealed", T=2.5),
        ThermodiffError,
        "needs T",
    ),
    ("Mask values text", lambda m: td.Mask("a", known), ThermodiffError, "values must be"),
    ("Mask mask text", lambda m: td.Mask(y2, "a"), ThermodiffError, "mask must be"),
    (
        "LogDensityGradient not callable",
        lambda m: td.LogDensityGradient(5),
        ThermodiffError,
        "log_r must be a function",
    ),
    (
        "LogDensityGradient scale NaN",
        lambda m: td.LogDensityGradient(lambda x: x.sum(1), scale=float("nan")),
        ThermodiffError,
        "scale = nan",
    ),
    (
        "LogDensityGradient scale text",
        lambda m: td.LogDensityGradient(lambda x: x.sum(1), scale="a"),
        ThermodiffError,
        "scale = 'a'",
    ),
    (
        "ClassifierGuidance not callable",
        lambda m: td.ClassifierGuidance(None),
        ThermodiffError,
        "log_prob_fn must be",
    ),
    (
        "ClassifierGuidance scale inf",
        lambda m: td.ClassifierGuidance(lambda x, t: x.sum(1), scale=float("inf")),
        ThermodiffError,
        "scale = inf",
    ),
    (
        "ddim_encode t_end 0",
        lambda m: td.ddim_encode(m["k"], m["fn"], y2, t_end=0),
        ThermodiffError,
        "t_end = 0",
    ),
    (
        "ddim_encode t_end beyond T",
        lambda m: td.ddim_encode(m["k"], m["fn"], y2, t_end=m["k"].T + 1),
        ThermodiffError,
        "t_end",
    ),
    ("ddim_encode x0 NaN", lambda m: td.ddim_encode(m["k"], m["fn"], nan2), ThermodiffError, "x0 holds NaN"),
    (
        "ddim_encode x0 list",
        lambda m: td.ddim_encode(m["k"], m["fn"], [[0.0, 0.0]]),
        ThermodiffError,
        "x0 must be",
    ),
    (
        "ddim_encode kernel None",
        lambda m: td.ddim_encode(None, m["fn"], y2),
        ThermodiffError,
        "Gaussian kernel",
    ),
]


def _spec(shape):
    from thermodiff.data import DataSpec

    return DataSpec(shape=shape, kind="image8" if len(shape) == 3 else "continuous", unit="bits")


def _scaling():
    from thermodiff.data import Scaling

    return Scaling(shift=(127.5,), scale=1 / 127.5)


@pytest.mark.parametrize("call, error, says", [c[1:] for c in MISUSES], ids=[c[0] for c in MISUSES])
def test_library_misuse_is_one_line(m, call, error, says: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # sample_grid's "g.png", had a check been missed
    with pytest.raises(error) as e:
        call(m)
    text = str(e.value)
    assert says in text and "\n" not in text, text
    assert not (tmp_path / "g.png").exists()


def test_non_finite_results_are_raised_not_returned(m) -> None:
    """An input far outside the data's range overflows the chain: NonFiniteError, naming how many
    values; an input of ordinary size gives finite values through the same calls."""
    huge = torch.full((1, 2), 1e300, dtype=F64)
    with pytest.raises(NonFiniteError, match="2 of 2 values came out NaN or infinite"):
        td.denoise(m["diag"], huge, 1.0)
    with pytest.raises(NonFiniteError, match="of 4 values"):
        td.interpolate(m["k"], m["fn"], huge, one2, 5, [0, 1])
    nan_r = td.LogDensityGradient(lambda x: (x * float("nan")).sum(1))
    with pytest.raises(NonFiniteError, match="8 of 8"):
        td.sample(m["k"], m["fn"], (2,), 4, multipliers=[nan_r])
    assert torch.isfinite(td.denoise(m["diag"], one2, 1.0)).all()
    assert torch.isfinite(td.interpolate(m["k"], m["fn"], one2, one2 + 1, 5, [0, 0.5, 1])).all()
