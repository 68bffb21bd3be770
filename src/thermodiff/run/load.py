"""A run directory: what is saved about a model, and loading it back with no flag repeated."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from thermodiff.config import Config, from_dict
from thermodiff.data import Dataset, DataSpec, Scaling
from thermodiff.data.units import KINDS, Units
from thermodiff.diffusion.schedules import Schedule
from thermodiff.errors import CheckpointError
from thermodiff.model.args import check_device
from thermodiff.model.assemble import DiffusionModel, build_model
from thermodiff.run.checkpoint import latest_checkpoint, load_checkpoint, must_fit, state_dict_under


def p_bar_of(cfg: Config, ds: Dataset) -> float:
    """Binomial stationary rate: data.p_bar, or the training-data mean when it is -1."""
    if cfg.diffusion.kernel != "binomial":
        return 0.5
    return cfg.data.p_bar if cfg.data.p_bar > 0 else float(ds.train.mean())


def model_tensors(net: nn.Module, schedule: Schedule) -> dict[str, torch.Tensor]:
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    tensors.update(schedule.state_dict())
    return tensors


def run_meta(cfg: Config, ds: Dataset, model: DiffusionModel) -> dict:
    """Everything besides weights that sampling and evaluation need (spec, scaling, p_bar, config)."""
    return {
        "config": cfg.to_dict(),
        "spec": asdict(ds.spec),
        "scaling": asdict(ds.scaling),
        "p_bar": model.p_bar,
    }


def data_of(meta: dict) -> tuple[DataSpec, Scaling]:
    """The data spec and scaling saved in a checkpoint's meta (run_meta); KeyError/ValueError if bad."""
    spec = DataSpec(tuple(int(n) for n in meta["spec"]["shape"]), meta["spec"]["kind"], meta["spec"]["unit"])
    scaling = Scaling(tuple(float(v) for v in meta["scaling"]["shift"]), float(meta["scaling"]["scale"]))
    finite = all(math.isfinite(v) for v in scaling.shift) and 0 < scaling.scale < math.inf
    if len(scaling.shift) != math.prod(spec.shape) or not finite:
        raise ValueError(f"scaling does not fit data of shape {spec.shape}")
    if spec.kind not in KINDS:
        raise ValueError(f"unknown data kind {spec.kind!r}")
    return spec, scaling


def latest_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a run directory's latest checkpoint, without the training state."""
    tensors, meta, _ = load_checkpoint(latest_checkpoint(Path(run_dir)))
    return tensors, meta


def task_of(meta: dict) -> str:
    """The train.task a checkpoint was trained for (runs from before classifiers: diffusion)."""
    train_cfg = meta.get("config", {}).get("train", {})
    return train_cfg.get("task", "diffusion") if isinstance(train_cfg, dict) else "diffusion"


def config_of(meta: dict) -> tuple[Config, DataSpec, Scaling]:
    """(config, data spec, scaling) saved in a checkpoint's meta; KeyError/ValueError/ConfigError if bad
    (load under run.checkpoint.must_fit)."""
    cfg = from_dict(meta["config"], stored=True)
    spec, scaling = data_of(meta)
    return cfg, spec, scaling


def check_weights(tensors: dict[str, torch.Tensor], where: Path) -> None:
    """NaN or infinite weights, or betas outside (0, 1] at t >= 1, would make every later number false."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    bad += [
        k
        for k, v in tensors.items()
        if k.endswith("schedule.betas") and not ((v[1:] > 0) & (v[1:] <= 1)).all()
    ]
    if bad:
        raise CheckpointError(
            f"{where}: the checkpoint's {bad[0]} holds NaN, infinite or out-of-range values"
        )


@dataclass(frozen=True)
class Run:
    """A trained run loaded back: its config, model, data spec and scaling (and the units built from
    them), the step it was saved at, its directory, and which weights the model holds ("ema": the
    moving average, or "raw": the trained weights of the last step)."""

    config: Config
    model: DiffusionModel
    spec: DataSpec
    scaling: Scaling
    units: Units
    step: int
    path: Path
    weights: str = "ema"


def load_run(run_dir: Path | str, device: str = "cpu", ema: bool = True) -> Run:
    """The run in a directory, on `device`, its model with the moving average of the weights (ema=True,
    what training's sample grids use) or the last step's trained weights (ema=False)."""
    device = check_device(device)
    tensors, meta = latest_state(run_dir)
    task = task_of(meta)
    if task != "diffusion":
        raise CheckpointError(f"{run_dir} is a {task} run, not a diffusion model (use it as --classifier)")
    with must_fit(run_dir, "checkpoint does not match its config"):
        cfg, spec, scaling = config_of(meta)
        model = build_model(cfg, spec.shape, float(meta["p_bar"]))
        prefix = "ema." if ema else ""
        model.net.load_state_dict(state_dict_under(tensors, prefix + "net."))
        model.schedule.load_state_dict({"schedule.betas": tensors[prefix + "schedule.betas"]})
    check_weights(tensors, run_dir)
    model.fast.prepare(model.net.to(device).eval())  # channels-last on a GPU when asked (fast.py)
    model.schedule.to(device)
    weights = "ema" if ema else "raw"
    return Run(cfg, model, spec, scaling, Units(spec, scaling), meta["step"], Path(run_dir), weights)
