"""Multiplying a trained model by a second distribution r(x) (P §2.5, App. C): denoising
(P Fig. 3), inpainting (P Fig. 5), interpolation (DDPM 4.4) and classifier guidance (ADM Alg. 1).

The first functions work in model space on tensors; the `*_file` ones are the CLI commands, file in
(PNG or .npy; units in data/files.py and data/units.py) -> file out, every input checked before any
output is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from thermodiff.data import Scaling
from thermodiff.data.files import check_out, panel_path, read_data, read_mask, write_data
from thermodiff.data.units import Units
from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.respace import Spacing
from thermodiff.errors import ShapeError, ThermodiffError
from thermodiff.model.args import check_number, check_tensor
from thermodiff.model.assemble import DiffusionModel
from thermodiff.run.load import Run, load_run
from thermodiff.sampling.ancestral import Multiplier, data_box, sample
from thermodiff.sampling.chain import chain_of
from thermodiff.sampling.interpolate import interpolate
from thermodiff.sampling.multipliers import BernoulliMask, ClassifierGuidance, GaussianObservation, Mask


def denoise(
    model: DiffusionModel,
    y: Tensor,
    noise_std: float,
    generator: torch.Generator | None = None,
    first: Sequence[Multiplier] = (),
    steps: Spacing | None = None,
    sampler: str = "ancestral",
    eta: float = 1.0,
) -> Tensor:
    """p(x) N(y; x, noise_std^2): start at x_T = y, exact Gaussian product at every step (P 2.5, App. C).
    `first`: multipliers applied before the product (e.g. data_box); steps, sampler, eta: chain_of."""
    _check_model(model)
    if not isinstance(model.kernel(), GaussianKernel):
        raise ThermodiffError("denoising needs a Gaussian kernel (this run is binomial)")
    y = check_tensor("y", y)
    check_number("noise_std", noise_std, "(0, inf)")
    check_number("eta", eta, "[0, 1]")
    c, shape = chain_of(model, steps, sampler, eta), tuple(y.shape[1:])
    mults = c.adapt([*first, GaussianObservation(y, noise_std, shape=shape)])
    n = y.shape[0]
    return sample(c.kernel, c.model_fn, shape, n, generator, y.device, mults, y, c.rule)


def inpaint(
    model: DiffusionModel,
    values: Tensor,
    mask: Tensor,
    generator: torch.Generator | None = None,
    first: Sequence[Multiplier] = (),
    schedule: str = "forward",
    steps: Spacing | None = None,
    sampler: str = "ancestral",
    eta: float = 1.0,
) -> Tensor:
    """p(x) delta(x_known - values), mask True = known; known coordinates come out bit-exact in model
    space. schedule "constant": the delta at every step from x_T = noise with known pixels set (P 2.5,
    bark inpainting); "forward" (Gaussian runs): known pixels follow q(x_{t-1} | x_0 = values) of the chain
    sampled (respaced or not). steps, sampler, eta: chain_of."""
    _check_model(model)
    if schedule not in ("constant", "forward"):
        raise ThermodiffError(f"unknown inpainting schedule {schedule!r}; expected constant or forward")
    values = check_tensor("values", values)
    shapes = (tuple(values.shape), tuple(values.shape[1:]), (1, *values.shape[1:]))  # per example or one
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) not in shapes:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ShapeError(
            f"mask must be a tensor of the values' shape {shapes[0]} (or {shapes[1]}), got {got}"
        )
    check_number("eta", eta, "[0, 1]")
    c = chain_of(model, steps, sampler, eta)
    kernel, shape, n = c.kernel, tuple(values.shape[1:]), values.shape[0]
    bits = isinstance(kernel, BinomialKernel)
    if bits:
        r = BernoulliMask(values, mask, shape=shape)
    else:
        r = Mask(values, mask, shape=shape, kernel=kernel if schedule == "forward" else None)
    x_T = kernel.prior_sample((n, *shape), generator=generator, device=values.device)
    x_T = r.fill(x_T) if schedule == "constant" or bits else x_T
    mults = c.adapt([*first, r])
    return sample(kernel, c.model_fn, shape, n, generator, values.device, mults, x_T, c.rule)


def _check_model(model: DiffusionModel) -> None:
    if not isinstance(model, DiffusionModel):
        raise ThermodiffError(
            f"model must be a DiffusionModel (load_run(...).model), not {type(model).__name__}"
        )


def guidance(
    classifier_run: Path | str,
    label: int,
    scale: float,
    model: DiffusionModel,
    scaling: Scaling,
    device: str,
) -> list[Multiplier]:
    """[ClassifierGuidance] toward class `label` with gradient scale s, r = p(y | x_t, t)^s (ADM Alg. 1);
    Chain.adapt makes it see the original steps of a respaced chain."""
    from thermodiff.sampling.guidance import load_classifier

    kernel = model.kernel()
    if not isinstance(kernel, GaussianKernel):
        raise ThermodiffError("classifier guidance needs a Gaussian kernel (this run is binomial)")
    clf = load_classifier(Path(classifier_run), device)
    clf.check_matches(kernel.betas.detach(), scaling)
    return [ClassifierGuidance(clf.guide(int(label)), scale)]


def _setup(run: Path | str | Run, out: Path | str | None, seed: int, device: str, name: str):
    """(out, run, generator): the Run (a directory is loaded with its EMA weights); out defaults to
    RUN/samples/NAME_seedS.png (.npy for vector data) and is checked before the model runs."""
    if out is not None:
        check_out(out)
    loaded = run if isinstance(run, Run) else load_run(Path(run), device)
    units = loaded.units
    if out is None:
        out = loaded.path / "samples" / f"{name}_seed{seed}{'.png' if units.is_image else '.npy'}"
    out = check_out(out)
    if out.suffix.lower() == ".png" and not units.is_image:
        shape = units.spec.shape
        raise ThermodiffError(f"PNG output needs an image run; this run models shape {shape}: use .npy")
    return out, loaded, torch.Generator(device).manual_seed(seed)


def _finish(out: Path, result: Tensor, units: Units, columns: list[tuple[str, Tensor]]) -> list[Path]:
    """Write the output, then (image runs) the panel of P Figs. 3-5 beside it."""
    from thermodiff.plots.draw import condition_panel

    paths = [write_data(out, result, units)]
    if units.is_image:
        cols = [(title, units.to_pixels(x.cpu())) for title, x in columns]
        paths.append(condition_panel(cols, panel_path(out)))
    return paths


def denoise_file(
    run: Path | str | Run,
    input: Path | str,
    out: Path | str | None = None,
    noise_std: float = 1.0,
    add_noise: bool = False,
    seed: int = 0,
    device: str = "cpu",
    clip: bool = True,
    steps: Spacing | None = None,
    sampler: str = "ancestral",
    eta: float = 1.0,
) -> list[Path]:
    """`thermodiff denoise`: noise_std in units of the data's std (model space; 1 = the paper's SNR 1).
    add_noise: the input is clean; corrupt it with that noise first (a demo). Else it is y itself.
    clip: keep predicted images in 0..255 (data_box)."""
    if not noise_std > 0:
        raise ThermodiffError(f"--noise-std must be > 0, got {noise_std}")
    out, loaded, gen = _setup(run, out, seed, device, "denoised")
    model, units = loaded.model, loaded.units
    x = read_data(input, units)
    clean = units.to_model(x).to(device)
    y = clean
    if add_noise:
        y = clean + noise_std * torch.randn(clean.shape, generator=gen, device=device, dtype=clean.dtype)
    first = data_box(model, units) if clip else []
    result = units.to_data(denoise(model, y, noise_std, gen, first, steps, sampler, eta).cpu())
    noisy = units.to_data(y.cpu())
    cols = ([("clean", x)] if add_noise else []) + [("noisy", noisy), ("denoised", result)]
    return _finish(out, result, units, cols)


def inpaint_file(
    run: Path | str | Run,
    input: Path | str,
    mask: Path | str,
    out: Path | str | None = None,
    seed: int = 0,
    device: str = "cpu",
    clip: bool = True,
    schedule: str = "forward",
    steps: Spacing | None = None,
    sampler: str = "ancestral",
    eta: float = 1.0,
) -> list[Path]:
    """`thermodiff inpaint`: mask 1 / white = known pixel. Known pixels are written back as read, so
    they are bit-exact in the output too (the sampler keeps them exactly; the data <-> model-space
    round trip alone could move them by one ulp). clip, schedule: as in data_box and inpaint."""
    out, loaded, gen = _setup(run, out, seed, device, "inpainted")
    model, units = loaded.model, loaded.units
    x = read_data(input, units)
    known = read_mask(mask, units, x.shape[0])
    first = data_box(model, units) if clip else []
    chain = {"steps": steps, "sampler": sampler, "eta": eta}
    result = inpaint(model, units.to_model(x).to(device), known.to(device), gen, first, schedule, **chain)
    result = torch.where(known, x, units.to_data(result.cpu()))
    hole = torch.where(known, x, torch.full_like(x, units.grey))
    return _finish(out, result, units, [("input", x), ("known (hole grey)", hole), ("inpainted", result)])


def interpolate_file(
    run: Path | str | Run,
    a: Path | str,
    b: Path | str,
    out: Path | str | None = None,
    t: int | None = None,
    steps: int = 8,
    seed: int = 0,
    device: str = "cpu",
    chain_steps: Spacing | None = None,
    sampler: str = "ancestral",
    eta: float = 0.0,
) -> tuple[list[Path], str]:
    """`thermodiff interpolate`: `steps` mixes lambda = 0..1 of a and b through step t (default T/2) of
    the chain `chain_steps` (t moves to the nearest kept step); with sampler "ddim" the inputs are encoded
    by DDIM at eta = 0 and decoded at `eta`. Returns the paths and a line saying how."""
    if not 2 <= steps <= 10_000:  # as the CLI's --steps
        raise ThermodiffError(f"--steps = {steps} must lie in [2, 1e4]")
    out, loaded, gen = _setup(run, out, seed, device, "interpolated")
    model, units = loaded.model, loaded.units
    xs = [read_data(p, units) for p in (a, b)]
    for name, x in zip(("--a", "--b"), xs, strict=True):
        if x.shape[0] != 1:
            raise ThermodiffError(f"{name} must hold one example, got {x.shape[0]}")
    c = chain_of(model, chain_steps, sampler, eta)
    T = model.schedule.T
    t = T // 2 if t is None else int(t)
    if not 0 <= t <= T:
        raise ThermodiffError(f"interpolation step t must lie in 0..{T}, got {t}")
    original = [0] + (list(range(1, T + 1)) if c.timesteps is None else c.timesteps[1:].tolist())
    i = min(range(len(original)), key=lambda j: abs(original[j] - t))  # the nearest kept step
    lambdas = torch.linspace(0, 1, steps, dtype=torch.float64)
    za, zb = (units.to_model(x).to(device) for x in xs)
    encoder = "ddim" if sampler == "ddim" else "forward"
    mixed = interpolate(c.kernel, c.model_fn, za, zb, i, lambdas, gen, (), c.rule, encoder)
    result = units.to_data(mixed.cpu())
    cols = [("a", xs[0])] + [(f"λ={v:.2f}", r[None]) for v, r in zip(lambdas.tolist(), result, strict=True)]
    how = "DDIM (eta = 0)" if encoder == "ddim" else "q(x_t | x_0), one shared noise"
    line = f"mixed at step {original[i]} of {T}; encoder: {how}; decoder: {c.description}"
    return _finish(out, result, units, [*cols, ("b", xs[1])]), line
