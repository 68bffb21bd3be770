"""The training loop: minimise -K (stochastic estimate, P eq. 14) per dimension; EMA; checkpoints.

Deterministic: one torch.Generator draws every batch index, t and noise; its state is saved with
the optimiser, so `--resume` continues exactly where an interrupted run stopped. Dropout draws from the
global stream, reseeded at every step from (seed, step, rank): exact on resume on a CPU and a GPU alike,
and independent masks on each rank's shard under DDP.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from thermodiff.config import Config, from_dict, replace_section
from thermodiff.data import Dataset, dequantize, load_dataset
from thermodiff.diffusion.bound import BoundTerms, bound_stochastic, draw_t, to_bits, uniform_t_probs
from thermodiff.errors import ConfigError, ThermodiffError, first_line
from thermodiff.model import fast
from thermodiff.model.assemble import DiffusionModel, build_model, dims
from thermodiff.run.checkpoint import (
    atomic_write_text,
    generator_state,
    has_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    must_fit,
    restore_generator,
    save_checkpoint,
)
from thermodiff.run.load import check_weights, model_tensors, p_bar_of, run_meta
from thermodiff.training import distributed as dist


def learning_rate(cfg: Config, step: int) -> float:
    """Linear warm-up, then cosine decay from train.lr to train.lr_final."""
    t = cfg.train
    if step < t.warmup:
        return t.lr * (step + 1) / t.warmup
    progress = (step - t.warmup) / max(1, t.steps - t.warmup)
    return t.lr_final + 0.5 * (t.lr - t.lr_final) * (1 + math.cos(math.pi * min(1.0, progress)))


def negative_bound(
    model: DiffusionModel, net: nn.Module, x0: Tensor, gen: torch.Generator, shard: slice = slice(None)
) -> tuple[Tensor, BoundTerms]:
    """The training loss -K in nats per dimension (P eq. 14) on this rank's shard of the global batch
    x0, t drawn uniformly over the learned steps and the noise drawn for the whole batch (DESIGN.md 5)."""
    kernel = model.kernel()
    t = draw_t(x0.shape[0], uniform_t_probs(kernel, x0.device), gen)
    noise = kernel.noise_like(x0, gen)
    fn = model.model_fn(kernel, net)
    terms, _ = bound_stochastic(kernel, fn, x0[shard], t=t[shard], noise=noise[shard])
    return -terms.K.mean() / x0[0].numel(), terms


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global RNG's seed at a training step (dropout masks): a function of where the run is, so
    nothing needs saving, and distinct per rank."""
    entropy = [seed % 2**64, step, rank]  # SeedSequence takes non-negative integers; torch seeds may be < 0
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


@torch.no_grad()
def ema_update(ema: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    if ema and all(e.is_cuda and e.dtype == p.dtype for e, p in zip(ema, params, strict=True)):
        torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)  # GPU: a few kernels
        return
    for e, p in zip(ema, params, strict=True):
        e.lerp_(p.detach().to(e.dtype), 1 - decay)


def trainable(model: DiffusionModel) -> list[torch.Tensor]:
    return list(model.net.parameters()) + model.schedule.parameters()


def train(
    cfg: Config,
    run_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    on_log: Callable[[dict], None] | None = None,
    progress: bool = False,
    overrides: Sequence[str] | None = None,
) -> Path:
    """Train (or resume) the run in run_dir; returns run_dir. Writes config.json, metrics.jsonl,
    checkpoints/. overrides: the --set texts behind cfg (the CLI's); see config_for_run."""
    run_dir = Path(run_dir)
    cfg = config_for_run(run_dir, cfg, resume, overrides)
    if cfg.train.task != "diffusion":  # a noisy or clean classifier (classifier.py)
        from thermodiff.training.classifier import train_classifier

        return train_classifier(cfg, run_dir, device, resume, on_log, progress)
    ds = load_dataset(cfg.data)
    model = build_model(cfg, ds.spec.shape, p_bar_of(cfg, ds))
    model.fast.prepare(model.net.to(device))  # channels-last on a GPU when asked (fast.py)
    model.schedule.to(device)
    ema_net = copy.deepcopy(model.net).requires_grad_(False)
    ema_sched = [p.detach().clone() for p in model.schedule.parameters()]
    params = trainable(model)
    opt = fast.adamw(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)  # fused on a GPU
    gen = torch.Generator(device).manual_seed(cfg.train.seed)
    start = 0
    if resume and has_checkpoint(run_dir):  # else stopped before its first checkpoint: start over
        start = _restore(run_dir, model, ema_net, ema_sched, opt, gen)
        params = trainable(model)  # the restored schedule logits are new tensors
    elif not resume and dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1))
    _truncate_metrics(run_dir / "metrics.jsonl", start)
    net = model.fast.compiled(dist.wrap(model.net))  # torch.compile only on a GPU with train.compile
    train_x = ds.train.to(device=device, dtype=torch.float32)
    d = dims(ds.spec.shape)
    batch = cfg.train.batch
    shard = dist.shard(batch)
    bar = _progress(start, cfg.train.steps, progress)
    window, t0 = [], time.time()
    for step in range(start, cfg.train.steps):
        torch.manual_seed(step_seed(cfg.train.seed, step, dist.rank()))  # dropout: CPU and CUDA streams
        lr = learning_rate(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        # The global batch, its t and noise are drawn identically on every rank; each takes a shard,
        # so 1 and N processes see the same examples (DESIGN.md 5).
        idx = torch.randint(train_x.shape[0], (batch,), generator=gen, device=device)
        x0 = train_x[idx].to(torch.float64)
        if ds.spec.kind == "image8" and cfg.train.dequantize:
            x0 = dequantize(x0, ds.scaling.scale, gen)
        loss, terms = negative_bound(model, net, x0, gen, shard)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if model.schedule.learnable:
            dist.all_reduce_grads(model.schedule.parameters())
        if cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
        opt.step()
        ema_update(list(ema_net.parameters()) + ema_sched, params, cfg.train.ema)
        window.append(terms.K.detach().mean())  # .item() only when logging: no per-step GPU sync
        if bar is not None:
            bar.update(1)
        if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
            k_mean = dist.mean_over_ranks(sum(v.item() for v in window) / len(window))
            if not math.isfinite(k_mean):  # before it is saved: the last checkpoint stays good
                raise ThermodiffError(
                    f"training diverged: K = {k_mean} by step {step + 1} (lower train.lr?); "
                    f"the last checkpoint in {run_dir} is kept"
                )
            record = {
                "step": step + 1,
                "K_bits": to_bits(k_mean) / ds.spec.units_per_example,  # evaluate's unit
                "unit": ds.spec.unit,
                "K_bits_per_dim": to_bits(k_mean) / d,
                "lr": lr,
                "seconds": round(time.time() - t0, 3),
            }
            window = []
            if dist.is_main():
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                if bar is not None:
                    bar.set_postfix(K_bits=f"{record['K_bits']:.3f}")
                if on_log is not None:
                    on_log(record)
        if (step + 1) % cfg.train.ckpt_every == 0 or step + 1 == cfg.train.steps:
            _save(run_dir, step + 1, cfg, ds, model, ema_net, ema_sched, opt, gen)
        every = cfg.train.sample_every
        if every and (step + 1) % every == 0 and len(ds.spec.shape) == 3 and dist.is_main():
            from thermodiff.sampling.ancestral import sample_grid  # EMA net, fixed seed: progress at a glance

            png = run_dir / "samples" / f"step_{step + 1:07d}.png"
            sample_grid(model, ds.spec, ds.scaling, png, net=ema_net, device=device)
    if bar is not None:
        bar.close()
    # train.steps = 0: save the initial model. Decided from the arguments, not from the file system
    # (every rank must agree: rank 0 may be writing LATEST while another rank looks for it).
    if start >= cfg.train.steps and not resume:
        _save(run_dir, start, cfg, ds, model, ema_net, ema_sched, opt, gen)
    return run_dir


def _progress(start: int, total: int, enabled: bool):
    if not enabled or not dist.is_main():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="train", dynamic_ncols=True)


def _save(run_dir, step, cfg, ds: Dataset, model, ema_net, ema_sched, opt, gen) -> None:
    dist.check_in_sync(trainable(model) + list(ema_net.parameters()) + ema_sched)
    if not all(torch.isfinite(p).all() for p in trainable(model)):  # e.g. between two log steps
        raise ThermodiffError(f"training diverged: NaN or infinite weights at step {step}; not saved")
    if not dist.is_main():
        return
    tensors = model_tensors(model.net, model.schedule)
    ema_betas = model.schedule.betas(*ema_sched).detach().clone()  # fixed schedules: no shared storage
    tensors.update({f"ema.net.{k}": v for k, v in ema_net.state_dict().items()})
    tensors["ema.schedule.betas"] = ema_betas
    state = {
        "optimizer": opt.state_dict(),
        **generator_state(gen),
        "ema_schedule": [p.detach().cpu() for p in ema_sched],
        "schedule_logits": [p.detach().cpu() for p in model.schedule.parameters()],
    }
    save_checkpoint(run_dir, step, tensors, run_meta(cfg, ds, model), state)


def _restore(run_dir, model, ema_net, ema_sched, opt, gen) -> int:
    path = latest_checkpoint(run_dir)
    tensors, meta, state = load_checkpoint(path, with_train_state=True)
    check_weights(tensors, path)
    with must_fit(path):
        model.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        ema_net.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("ema.net.")})
        model.schedule.load_state_dict({"schedule.betas": tensors["schedule.betas"]})
        with torch.no_grad():
            for p, saved in zip(model.schedule.parameters(), state["schedule_logits"], strict=True):
                p.copy_(saved)
            for p, saved in zip(ema_sched, state["ema_schedule"], strict=True):
                p.copy_(saved)
        opt.param_groups[0]["params"] = trainable(model)
        fast.load_optimizer_state(opt, state["optimizer"])  # keeps this device's fused/foreach choice
        restore_generator(gen, state)
    return meta["step"]


# What makes a run the run it is: a resume with another value is another experiment.
_IDENTITY = ("train.task", "data.name", "diffusion.kernel", "model.net")


def config_for_run(
    run_dir: Path, cfg: Config, resume: bool, overrides: Sequence[str] | None = None
) -> Config:
    """Fresh: run_dir must hold no run. Resume: the run's config.json rules; cfg's identity fields and
    every override must agree with it (a one-line error), except train.steps, which is cfg's when
    overrides is None (a library call) or names it (--set train.steps=N), else the run's own."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory")
    if not resume:  # rank 0 alone: it may already have written config.json when another rank looks
        names = ("config.json", "checkpoints", "metrics.jsonl") if dist.is_main() else ()
        held = [n for n in names if (run_dir / n).exists()]
        if held:
            raise ConfigError(f"{run_dir} already holds a run ({held[0]}): pass --resume or another --out")
        return cfg
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"cannot resume: {path} not found")
    try:
        saved = from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        raise ConfigError(f"cannot resume: {path} is corrupt ({first_line(e)})") from None
    keys = None if overrides is None else [o.split("=", 1)[0].strip() for o in overrides]
    for key in (*_IDENTITY, *(keys or ())):
        section, field = key.split(".", 1)
        given, was = getattr(getattr(cfg, section), field), getattr(getattr(saved, section), field)
        if key != "train.steps" and given != was:
            raise ConfigError(
                f"cannot resume {run_dir} with {key} = {given!r}: it was trained with {was!r} "
                "(its config.json rules; only train.steps may change)"
            )
    steps = cfg.train.steps if keys is None or "train.steps" in keys else saved.train.steps
    return replace_section(saved, "train", steps=steps)


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the metric records up to `step`: an interrupted run's later records, and a last line torn
    by a kill mid-write, are dropped so that the resumed log reads cleanly."""
    if not path.exists() or not dist.is_main():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))
