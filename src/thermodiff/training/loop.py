"""The one training loop: AdamW with warm-up and cosine decay, EMA, checkpoints, exact resume, DDP.

Deterministic: one torch.Generator draws every batch index, t and noise; its state is saved with
the optimiser, so `--resume` continues exactly where an interrupted run stopped. An objective that uses
dropout has the global stream reseeded at every step from (seed, step, rank): exact on resume on a CPU
and a GPU alike, and independent masks on each rank's shard under DDP.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from thermodiff.config import TrainConfig
from thermodiff.data import dequantize
from thermodiff.errors import ConfigError, ThermodiffError
from thermodiff.model import fast
from thermodiff.run.checkpoint import (
    atomic_write_text,
    generator_state,
    has_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    must_fit,
    restore_generator,
    save_checkpoint,
    state_dict_under,
)
from thermodiff.run.load import check_weights
from thermodiff.training import distributed as dist
from thermodiff.training.ema import ema_decay, ema_update
from thermodiff.training.window import window_of, window_state


class Objective(Protocol):
    """What fit minimises, logs and saves; fit owns everything else (optimiser, EMA, resume, files)."""

    net: nn.Module  # the trained network; fit keeps its EMA copy and DDP-wraps it
    reseeds_dropout: bool  # the global stream is reseeded per step (dropout masks; see step_seed)
    progress_key: str | None  # the record field shown on the progress bar

    def extra_params(self) -> list[Tensor]:
        """Learned tensors outside the network (a learned schedule's logits); fit averages their
        gradients over ranks and keeps their EMA."""
        ...

    def loss(
        self, net: nn.Module, x0: Tensor, labels: Tensor | None, gen: torch.Generator, shard: slice
    ) -> tuple[Tensor, Tensor]:
        """(loss on this rank's shard of the global batch x0, a detached statistic for the log)."""
        ...

    def summary(self, window: list[Tensor]) -> dict[str, float]:
        """The statistics of the steps since the last record -> their means on this rank."""
        ...

    def record(self, means: dict[str, float]) -> dict:
        """The means over ranks -> the metric record's fields (between "step" and "lr")."""
        ...

    def checkpoint(self, ema_net: nn.Module, ema_extra: list[Tensor]) -> tuple[dict, dict, dict]:
        """(tensors, meta, extra training state) to save."""
        ...

    def restore(self, tensors: dict, state: dict, ema_extra: list[Tensor]) -> None:
        """Load what checkpoint() saved beyond the network and its EMA ("net.", "ema.net.")."""
        ...


@dataclass
class Examples:
    """The training set in model space on the training device, drawn as global batches with
    replacement; dequantized by one grey level (step `dequantize_step`) unless that is None."""

    x: Tensor
    labels: Tensor | None = None
    dequantize_step: float | None = None

    def draw(self, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """(x0 float64, labels or None): the same global batch on every rank."""
        idx = torch.randint(self.x.shape[0], (batch,), generator=gen, device=self.x.device)
        x0 = self.x[idx].to(torch.float64)
        labels = None if self.labels is None else self.labels[idx]
        if self.dequantize_step is not None:
            x0 = dequantize(x0, self.dequantize_step, gen)
        return x0, labels


def learning_rate(train: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay from train.lr to train.lr_final."""
    if step < train.warmup:
        return train.lr * (step + 1) / train.warmup
    progress = (step - train.warmup) / max(1, train.steps - train.warmup)
    return train.lr_final + 0.5 * (train.lr - train.lr_final) * (1 + math.cos(math.pi * min(1.0, progress)))


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global RNG's seed at a training step (dropout masks): a function of where the run is, so
    nothing needs saving, and distinct per rank."""
    entropy = [seed % 2**64, step, rank]  # SeedSequence takes non-negative integers; torch seeds may be < 0
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


def fit(
    objective: Objective,
    examples: Examples,
    train: TrainConfig,
    run_dir: Path,
    config: dict,
    device: str = "cpu",
    resume: bool = False,
    on_log: Callable[[dict], None] | None = None,
    progress: bool = False,
    after_step: Callable[[int, nn.Module], None] | None = None,
) -> Path:
    """Minimise objective.loss over train.steps global batches of `examples`; writes config.json (the
    `config` dict, on a fresh run), metrics.jsonl and checkpoints/ in run_dir. resume: continue from the
    latest checkpoint (none yet: start over). after_step(step, ema_net) runs on rank 0 after every step,
    its record and checkpoint written (train's sample grids)."""
    run_dir = Path(run_dir)
    net = objective.net
    ema_net = copy.deepcopy(net).requires_grad_(False)
    ema_extra = [p.detach().clone() for p in objective.extra_params()]
    params = list(net.parameters()) + objective.extra_params()
    opt = fast.adamw(params, lr=train.lr, weight_decay=train.weight_decay)  # fused on a GPU
    gen = torch.Generator(device).manual_seed(train.seed)
    start, window = 0, []
    if resume and has_checkpoint(run_dir):  # else stopped before its first checkpoint: start over
        start, window = _restore(run_dir, objective, ema_net, ema_extra, opt, gen)
        params = list(net.parameters()) + objective.extra_params()  # restored logits are new tensors
        if start > train.steps:  # nothing to do would read as "trained"
            raise ConfigError(f"cannot resume to train.steps = {train.steps}: the run is at step {start}")
    elif not resume and dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(config, indent=1))
    truncate_metrics(run_dir / "metrics.jsonl", start)
    wrapped = dist.wrap(net)
    shard = dist.shard(train.batch)
    bar = _progress(start, train.steps, progress)
    t0 = time.time()

    def save(step: int) -> None:
        _save(run_dir, step, objective, params, ema_net, ema_extra, opt, gen, window)

    for step in range(start, train.steps):
        if objective.reseeds_dropout:
            torch.manual_seed(step_seed(train.seed, step, dist.rank()))  # CPU and CUDA streams
        lr = learning_rate(train, step)
        for group in opt.param_groups:
            group["lr"] = lr
        # The global batch, its t and noise are drawn identically on every rank; each takes a shard,
        # so 1 and N processes see the same examples.
        x0, labels = examples.draw(train.batch, gen)
        loss, stat = objective.loss(wrapped, x0, labels, gen, shard)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        dist.all_reduce_grads(objective.extra_params())  # outside the DDP module
        if train.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, train.grad_clip)
        opt.step()
        decay = ema_decay(train.ema, step + 1, train.ema_warmup)  # a function of the step: exact on resume
        ema_update(list(ema_net.parameters()) + ema_extra, params, decay)
        window.append(stat)  # .item() only when logging: no per-step GPU sync
        if bar is not None:
            bar.update(1)
        if (step + 1) % train.log_every == 0 or step + 1 == train.steps:
            means = {k: dist.mean_over_ranks(v) for k, v in objective.summary(window).items()}
            for name, value in means.items():  # before it is saved: the last checkpoint stays good
                if not math.isfinite(value):
                    raise ThermodiffError(
                        f"training diverged: {name} = {value} by step {step + 1} (lower train.lr?); "
                        f"the last checkpoint in {run_dir} is kept"
                    )
            record = {
                "step": step + 1,
                **objective.record(means),
                "lr": lr,
                "seconds": round(time.time() - t0, 3),
            }
            window = []
            if dist.is_main():
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                if bar is not None and objective.progress_key is not None:
                    key = objective.progress_key
                    bar.set_postfix({key: f"{record[key]:.3f}"})
                if on_log is not None:
                    on_log(record)
        if (step + 1) % train.ckpt_every == 0 or step + 1 == train.steps:
            save(step + 1)
        if after_step is not None and dist.is_main():
            after_step(step + 1, ema_net)
    if bar is not None:
        bar.close()
    # train.steps = 0: save the initial model. Decided from the arguments, not from the file system
    # (every rank must agree: rank 0 may be writing LATEST while another rank looks for it).
    if start >= train.steps and not resume:
        save(start)
    return run_dir


def _progress(start: int, total: int, enabled: bool):
    if not enabled or not dist.is_main():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="train", dynamic_ncols=True)


def _save(run_dir, step, objective: Objective, params, ema_net, ema_extra, opt, gen, window) -> None:
    dist.check_in_sync(params + list(ema_net.parameters()) + ema_extra)
    carried = window_state(window)  # a collective: before rank 0 alone goes on
    if not all(torch.isfinite(p).all() for p in params):  # e.g. between two log steps
        raise ThermodiffError(f"training diverged: NaN or infinite weights at step {step}; not saved")
    if not dist.is_main():
        return
    tensors, meta, extra_state = objective.checkpoint(ema_net, ema_extra)
    state = {"optimizer": opt.state_dict(), **generator_state(gen), **extra_state, **carried}
    save_checkpoint(run_dir, step, tensors, meta, state)


def _restore(run_dir, objective: Objective, ema_net, ema_extra, opt, gen) -> tuple[int, list]:
    path = latest_checkpoint(run_dir)
    tensors, meta, state = load_checkpoint(path, with_train_state=True)
    check_weights(tensors, path)
    with must_fit(path):
        objective.net.load_state_dict(state_dict_under(tensors, "net."))
        ema_net.load_state_dict(state_dict_under(tensors, "ema.net."))
        objective.restore(tensors, state, ema_extra)
        opt.param_groups[0]["params"] = list(objective.net.parameters()) + objective.extra_params()
        fast.load_optimizer_state(opt, state["optimizer"])  # keeps this device's fused/foreach choice
        restore_generator(gen, state)
    return meta["step"], window_of(state, gen.device)


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the metric records up to `step`: an interrupted run's later records, and a last line torn
    by a kill mid-write, are dropped so that the resumed log reads cleanly."""
    if not path.exists() or not dist.is_main():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # a torn or corrupt line
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))
