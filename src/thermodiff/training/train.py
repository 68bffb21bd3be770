"""Training from a config: data, network and objective -> the one loop (loop.fit).

A diffusion model minimises -K (P eq. 14); a noisy classifier p(y | x_t, t) the cross-entropy
(ADM 4.1). Both runs have one contract: config.json, metrics.jsonl, checkpoints/, exact --resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from thermodiff.config import Config, replace_section
from thermodiff.data import DATASETS, Dataset, DataSpec, Scaling, load_dataset
from thermodiff.data.sources import pin_path
from thermodiff.errors import ConfigError
from thermodiff.model.args import check_device
from thermodiff.model.assemble import DiffusionModel, build_model, raw_width
from thermodiff.model.memory import check_training_fits
from thermodiff.nets import NETS
from thermodiff.nets.classifier import TASKS, build_classifier
from thermodiff.run.card import write_card
from thermodiff.run.load import p_bar_of
from thermodiff.run.lock import remove_temporaries
from thermodiff.training import distributed as dist
from thermodiff.training.classifier import classifier_data, forward_setup
from thermodiff.training.loop import Examples, fit
from thermodiff.training.objectives import ClassifierData, CrossEntropy, NegativeBound
from thermodiff.training.resume import config_for_run


def train(
    cfg: Config,
    run_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    on_log: Callable[[dict], None] | None = None,
    progress: bool = False,
    overrides: Sequence[str] | None = None,
    dataset: Dataset | None = None,
    net: nn.Module | None = None,
) -> Path:
    """Train (or resume) the run in run_dir; returns run_dir. Writes config.json, metrics.jsonl,
    checkpoints/. overrides: the --set texts behind cfg (the CLI's); see config_for_run. dataset: the
    data to train on instead of cfg.data's; net: the network instead of cfg.model's, any module
    (x_t, t) -> raw with the reverse map's output channels (a classifier: (x_t, t) -> logits)."""
    run_dir, device = Path(run_dir), check_device(device)
    with dist.rank0_run_lock(run_dir):  # one writer: DDP's rank 0, or the one process
        if resume and dist.is_main():
            remove_temporaries(run_dir)
        cfg = dist.agree(lambda: config_for_run(run_dir, recorded(cfg, net), resume, overrides))
        return _train(cfg, run_dir, device, resume, on_log, progress, dataset, net)


def _train(cfg, run_dir, device, resume, on_log, progress, dataset, net) -> Path:
    if cfg.train.task != "diffusion":
        return train_classifier(cfg, run_dir, device, resume, on_log, progress, dataset, net)
    ds = load_dataset(cfg.data) if dataset is None else dataset
    if dataset is None and DATASETS[cfg.data.name].kind == "any":
        check_file_fits(cfg, ds.spec)
    if net is None:  # refused before the network is allocated (a user's net already is)
        dist.agree(lambda: check_training_fits(cfg, ds.spec.shape, raw_width(cfg, ds.spec.shape), device))
    model = build_model(cfg, ds.spec.shape, p_bar_of(cfg, ds), net=net)
    model.fast.prepare(model.net.to(device))  # channels-last on a GPU when asked (fast.py)
    model.schedule.to(device)
    train_x = ds.train.to(device=device, dtype=torch.float32)
    examples = Examples(train_x, None, _dequantize_step(cfg, ds.spec, ds.scaling))
    grids = _sample_grids(model, ds, run_dir, cfg.train.sample_every, device)
    objective = NegativeBound(model, cfg, ds)
    fit(objective, examples, cfg.train, run_dir, cfg.to_dict(), device, resume, on_log, progress, grids)
    if dist.is_main():
        from thermodiff.training.figures import end_of_training  # matplotlib: loaded by rank 0, at the end

        end_of_training(run_dir, device)  # RUN/plots/, as `thermodiff plot`; a failure is never raised
        write_card(run_dir, cfg, cfg.train.steps)
    return run_dir


def recorded(cfg: Config, net: nn.Module | None) -> Config:
    """What the run directory records so that it reloads alone: data.path absolute with the file's
    SHA-256, and a network passed in by its class's import path (model.net = "module:Class")."""
    cfg = replace_section(cfg, "data", **vars(pin_path(cfg.data)))
    if net is None or cfg.train.task != "diffusion":
        return cfg
    path = f"{type(net).__module__}:{type(net).__qualname__}"
    return cfg if cfg.model.net == path else replace_section(cfg, "model", net=path, kwargs={})


def check_file_fits(cfg: Config, spec: DataSpec) -> None:
    """data.name = "array": the kernel and a registered network's kind must fit what the file holds."""
    binary, images = spec.kind == "binary", len(spec.shape) == 3
    if binary != (cfg.diffusion.kernel == "binomial"):
        what = "binary values (all 0 or 1)" if binary else f"{spec.kind} values"
        need = "binomial" if binary else "gaussian"
        raise ConfigError(f"{cfg.data.path} holds {what}: set diffusion.kernel = '{need}'")
    entry = NETS.get(cfg.model.net)
    if entry is not None and entry.kind != ("images" if images else "vectors"):
        nets = ", ".join(n for n, e in NETS.items() if e.kind == ("images" if images else "vectors"))
        raise ConfigError(
            f"{cfg.data.path} holds {'images' if images else 'vectors'} of shape {spec.shape}; "
            f"model.net = {cfg.model.net!r} takes {entry.kind}: use {nets}"
        )


def train_classifier(
    cfg: Config,
    run_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    on_log: Callable[[dict], None] | None = None,
    progress: bool = False,
    dataset: Dataset | None = None,
    net: nn.Module | None = None,
) -> Path:
    """Minimise cross-entropy of p(y | x_t, t), t ~ U{0..T} (clean: t = 0) (ADM 4.1); EMA; checkpoints."""
    run_dir = Path(run_dir)
    if cfg.train.task not in TASKS:
        raise ConfigError(f"train.task = {cfg.train.task!r} is not a classifier task ({', '.join(TASKS)})")
    betas, scaling, spec = forward_setup(cfg)
    x_train, labels, scaling, spec, n_classes = classifier_data(cfg, scaling, spec, dataset)
    if net is None:
        net = build_classifier(cfg.model, spec.shape, n_classes, seed=cfg.train.seed)
    objective = CrossEntropy(net.to(device), betas, cfg, ClassifierData(spec, scaling, n_classes))
    examples = Examples(x_train.to(device), labels.to(device), _dequantize_step(cfg, spec, scaling))
    return fit(objective, examples, cfg.train, run_dir, cfg.to_dict(), device, resume, on_log, progress)


def _dequantize_step(cfg: Config, spec: DataSpec, scaling: Scaling) -> float | None:
    """8-bit images with train.dequantize: uniform noise of one grey level (scaling.scale in model space)."""
    return scaling.scale if spec.kind == "image8" and cfg.train.dequantize else None


def _sample_grids(model: DiffusionModel, ds: Dataset, run_dir: Path, every: int, device: str):
    """train.sample_every on images: a 16-sample grid of the EMA net at a fixed seed, progress at a glance."""
    if not every or len(ds.spec.shape) != 3:
        return None

    def grid(step: int, ema_net: nn.Module) -> None:
        if step % every == 0:
            from thermodiff.sampling.ancestral import sample_grid

            png = run_dir / "samples" / f"step_{step:07d}.png"
            sample_grid(model, ds.spec, ds.scaling, png, net=ema_net, device=device)

    return grid
