"""A classifier run's forward kernel and data: those of the diffusion model it guides.

Trained on x_t ~ q(x_t | x_0) with the SAME forward kernel as the diffusion model it guides (Dhariwal &
Nichol 2021, ADM 4.1): `diffusion.from_run` names that model's run directory, whose (EMA) betas and data
scaling are copied; otherwise the config's own [diffusion] section builds them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from thermodiff.config import Config
from thermodiff.data import Dataset, DataSpec, Scaling, Units, load_dataset
from thermodiff.diffusion.schedules import make_schedule
from thermodiff.errors import CheckpointError, ConfigError, DataError
from thermodiff.run.load import data_of, latest_state


def forward_setup(cfg: Config) -> tuple[Tensor, Scaling | None, DataSpec | None]:
    """(betas, scaling or None, spec or None) from diffusion.from_run, else from [diffusion]."""
    d = cfg.diffusion
    if d.from_run:
        tensors, meta = latest_state(Path(d.from_run))
        try:
            betas = tensors["ema.schedule.betas"].to(torch.float64)
            spec, scaling = data_of(meta)
            kernel = meta["config"]["diffusion"]["kernel"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{d.from_run}: not a diffusion run ({e})") from None
        if kernel != "gaussian":
            raise ConfigError(f"{d.from_run}: classifier guidance needs a Gaussian kernel, not {kernel}")
        return betas, scaling, spec
    if d.kernel != "gaussian":
        raise ConfigError("classifier guidance needs diffusion.kernel = gaussian")
    betas = make_schedule(d.schedule, d.T, d.beta_1, d.beta_max, d.learned_init).betas().detach()
    return betas.to(torch.float64), None, None


def classifier_data(
    cfg: Config, scaling: Scaling | None, spec: DataSpec | None, dataset: Dataset | None = None
) -> tuple[Tensor, Tensor, Scaling, DataSpec, int]:
    """(x_train, labels, scaling, spec, n_classes): the data (cfg.data's unless given) in the guided
    model's space."""
    ds = load_dataset(cfg.data) if dataset is None else dataset
    if ds.labels_train is None:
        raise DataError(f"data.name = {cfg.data.name!r} has no labels: a classifier needs them (mnist)")
    x = ds.train
    if scaling is not None:
        if spec.shape != ds.spec.shape:
            raise DataError(f"diffusion.from_run models shape {spec.shape}, the data are {ds.spec.shape}")
        x = Units(spec, scaling).to_model(ds.units.to_data(x))  # the guided model's space
    return x, ds.labels_train, scaling or ds.scaling, ds.spec, int(ds.labels_train.max()) + 1
