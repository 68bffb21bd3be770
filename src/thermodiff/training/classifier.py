"""A noisy classifier p(y | x_t, t) for guidance and a clean one (t = 0) to judge samples.

Trained on x_t ~ q(x_t | x_0) at a uniform random t = 0..T, with the SAME forward kernel as the diffusion
model it guides (Dhariwal & Nichol 2021, ADM 4.1): `diffusion.from_run` names that model's run directory,
whose (EMA) betas and data scaling are copied; otherwise the config's own [diffusion] section builds them.
Its gradient grad_{x_t} log p(y | x_t, t) tilts each reverse step (condition.ClassifierGuidance; P 2.5).
A run directory has the same contract as a diffusion run: config.json, metrics.jsonl, checkpoints/.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from thermodiff.config import Config, from_dict
from thermodiff.config.rules import int_list
from thermodiff.data import DataSpec, Scaling, dequantize, load_dataset
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.schedules import make_schedule
from thermodiff.errors import CheckpointError, ConfigError, DataError, ThermodiffError
from thermodiff.model import fast
from thermodiff.nets.time import sinusoidal_embedding
from thermodiff.nets.unet import Downsample, ResBlock, group_norm
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
from thermodiff.run.load import data_of

TASKS = ("classifier", "clean_classifier")


class NoisyClassifier(nn.Module):
    """Encoder half of the DDPM U-Net + global average pool + linear head: (x_t, t) -> logits (ADM)."""

    def __init__(
        self, shape: tuple[int, ...], n_classes: int, base: int, mults: tuple[int, ...], blocks: int
    ):
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"a classifier needs image data (C, H, W), got shape {shape}")
        self.base, temb = base, 4 * base
        self.temb = nn.Sequential(nn.Linear(base, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(shape[0], base, 3, padding=1)
        layers, c = [], base
        for i, m in enumerate(mults):
            for _ in range(blocks):
                layers.append(ResBlock(c, base * m, temb, 0.0))  # no dropout: exact resume (ADM: 0)
                c = base * m
            if i < len(mults) - 1:
                layers.append(Downsample(c))
        self.layers = nn.ModuleList(layers)
        self.norm_out = group_norm(c)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x: (B, C, H, W), t: (B,) integer -> logits (B, n_classes)."""
        emb = self.temb(sinusoidal_embedding(t, self.base))
        h = self.conv_in(x)
        for layer in self.layers:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return self.head(F.silu(self.norm_out(h)).mean((2, 3)))


def build_classifier(cfg: Config, shape: tuple[int, ...], n_classes: int) -> NoisyClassifier:
    """Config -> classifier: model.base, model.mults, model.num_res_blocks (seeded by train.seed)."""
    torch.manual_seed(cfg.train.seed)
    m = cfg.model
    return NoisyClassifier(shape, n_classes, m.base, int_list(m.mults), m.num_res_blocks)


@dataclass
class Classifier:
    """A loaded classifier; calling it gives log p(y | x_t, t) per example, shape (B,)."""

    net: NoisyClassifier
    betas: Tensor  # (T + 1,) float64: the forward kernel it was trained under
    scaling: Scaling
    spec: DataSpec
    n_classes: int
    task: str

    def logits(self, x_t: Tensor, t: Tensor) -> Tensor:
        """(B, *S) model space, t (B,) -> (B, n_classes); the clean classifier always sees t = 0."""
        if self.task == "clean_classifier":
            t = torch.zeros_like(t)
        dtype = next(self.net.parameters()).dtype
        return self.net(x_t.to(dtype), t).to(x_t.dtype)

    def __call__(self, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """log p(y | x_t, t): differentiable in x_t (ADM Alg. 1's grad log p_phi)."""
        y = torch.as_tensor(y, device=x_t.device).expand(x_t.shape[0])
        return F.log_softmax(self.logits(x_t, t), dim=1).gather(1, y[:, None]).squeeze(1)

    def guide(self, label: int) -> Callable[[Tensor, Tensor], Tensor]:
        """(x_t, t) -> log p(label | x_t, t): the log_prob_fn of condition.ClassifierGuidance."""
        if not 0 <= label < self.n_classes:
            raise ThermodiffError(
                f"class {label} is out of range: the classifier knows 0..{self.n_classes - 1}"
            )
        return lambda x_t, t: self(x_t, t, torch.tensor(label, dtype=torch.long))

    def check_matches(self, betas: Tensor, scaling: Scaling) -> None:
        """The guided model must share the classifier's forward kernel and data scaling (ADM 4.1)."""
        if self.task != "classifier":
            raise ThermodiffError("guidance needs a noisy classifier (train.task = classifier)")
        mine = self.betas.to(betas.device)
        if mine.numel() != betas.numel() or not torch.allclose(mine, betas.to(mine.dtype), rtol=1e-5, atol=0):
            raise ThermodiffError(
                f"the classifier was trained with another noise schedule (T = {mine.numel() - 1}) than "
                f"this model (T = {betas.numel() - 1}); train it with diffusion.from_run = this run"
            )
        shift, other = torch.tensor(self.scaling.shift), torch.tensor(scaling.shift)
        same = shift.shape == other.shape and torch.allclose(shift, other, rtol=1e-6, atol=1e-9)
        if not same or abs(self.scaling.scale / scaling.scale - 1) > 1e-6:
            raise ThermodiffError("the classifier was trained on differently scaled data than this model")


@torch.no_grad()
def accuracy(clf: Classifier, x: Tensor, labels: Tensor, t: int = 0, batch: int = 500) -> float:
    """Share of examples (model space) whose most probable class is the label, at step t (x given)."""
    hits = 0
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch]
        steps = torch.full((xb.shape[0],), t, dtype=torch.long, device=xb.device)
        hits += int((clf.logits(xb, steps).argmax(1) == labels[i : i + batch].to(xb.device)).sum())
    return hits / max(1, x.shape[0])


def _forward_setup(cfg: Config) -> tuple[Tensor, Scaling | None, DataSpec | None]:
    """(betas, scaling or None, spec or None) from diffusion.from_run, else from [diffusion]."""
    d = cfg.diffusion
    if d.from_run:
        tensors, meta, _ = load_checkpoint(latest_checkpoint(Path(d.from_run)))
        try:
            betas = tensors["ema.schedule.betas"].to(torch.float64)
            scaling = Scaling(tuple(meta["scaling"]["shift"]), float(meta["scaling"]["scale"]))
            spec = DataSpec(tuple(meta["spec"]["shape"]), meta["spec"]["kind"], meta["spec"]["unit"])
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


def _data(cfg: Config, scaling: Scaling | None, spec: DataSpec | None):
    """(x_train, labels, scaling, spec, n_classes): the data in the guided model's space."""
    ds = load_dataset(cfg.data)
    if ds.labels_train is None:
        raise DataError(f"data.name = {cfg.data.name!r} has no labels: a classifier needs them (mnist)")
    x = ds.train
    if scaling is not None:
        if spec.shape != ds.spec.shape:
            raise DataError(f"diffusion.from_run models shape {spec.shape}, the data are {ds.spec.shape}")
        x = scaling.apply(ds.scaling.invert(x))
    return x, ds.labels_train, scaling or ds.scaling, ds.spec, int(ds.labels_train.max()) + 1


def _meta(cfg: Config, spec: DataSpec, scaling: Scaling, n_classes: int) -> dict:
    return {
        "config": cfg.to_dict(),
        "spec": asdict(spec),
        "scaling": asdict(scaling),
        "n_classes": n_classes,
        "task": cfg.train.task,
    }


def train_classifier(
    cfg: Config,
    run_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    on_log: Callable[[dict], None] | None = None,
    progress: bool = False,
) -> Path:
    """Minimise cross-entropy of p(y | x_t, t), t ~ U{0..T} (clean: t = 0) (ADM 4.1); EMA; checkpoints."""
    from thermodiff.training.train import _progress, _truncate_metrics, ema_update, learning_rate

    run_dir = Path(run_dir)
    if cfg.train.task not in TASKS:
        raise ConfigError(f"train.task = {cfg.train.task!r} is not a classifier task ({', '.join(TASKS)})")
    betas, scaling, spec = _forward_setup(cfg)
    x_train, labels, scaling, spec, n_classes = _data(cfg, scaling, spec)
    kernel = GaussianKernel(betas.to(device))
    net = build_classifier(cfg, spec.shape, n_classes).to(device)
    ema_net = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    gen = torch.Generator(device).manual_seed(cfg.train.seed)
    start = 0
    if resume and has_checkpoint(run_dir):  # else stopped before its first checkpoint: start over
        path = latest_checkpoint(run_dir)
        tensors, meta, state = load_checkpoint(path, with_train_state=True)
        with must_fit(path):
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            ema_net.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("ema.net.")})
            fast.load_optimizer_state(opt, state["optimizer"])
            restore_generator(gen, state)
        start = meta["step"]
    elif not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1))
    _truncate_metrics(run_dir / "metrics.jsonl", start)
    x_train, labels = x_train.to(device), labels.to(device)
    meta = _meta(cfg, spec, scaling, n_classes)
    bar, window, t0 = _progress(start, cfg.train.steps, progress), [], time.time()
    for step in range(start, cfg.train.steps):
        lr = learning_rate(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(x_train.shape[0], (cfg.train.batch,), generator=gen, device=device)
        x0, y = x_train[idx], labels[idx]
        if spec.kind == "image8" and cfg.train.dequantize:
            x0 = dequantize(x0, scaling.scale, gen)
        high = kernel.T + 1 if cfg.train.task == "classifier" else 1
        t = torch.randint(0, high, (x0.shape[0],), generator=gen, device=device)
        x_t = kernel.q_sample(x0, t, kernel.noise_like(x0, gen))  # t = 0: x_0 itself
        logits = net(x_t.float(), t)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(net.parameters(), cfg.train.grad_clip)
        opt.step()
        ema_update(list(ema_net.parameters()), list(net.parameters()), cfg.train.ema)
        window.append(torch.stack([loss.detach(), (logits.argmax(1) == y).float().mean()]))  # no sync
        if bar is not None:
            bar.update(1)
        if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
            loss_mean, acc_mean = torch.stack(window).double().mean(0).tolist()
            record = {
                "step": step + 1,
                "loss_nats": loss_mean,
                "train_accuracy": acc_mean,
                "lr": lr,
                "seconds": round(time.time() - t0, 3),
            }
            window = []
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if on_log is not None:
                on_log(record)
        if (step + 1) % cfg.train.ckpt_every == 0 or step + 1 == cfg.train.steps:
            _save(run_dir, step + 1, net, ema_net, betas, meta, opt, gen)
    if bar is not None:
        bar.close()
    if not (run_dir / "checkpoints" / "LATEST").exists():
        _save(run_dir, start, net, ema_net, betas, meta, opt, gen)
    return run_dir


def _save(run_dir: Path, step: int, net, ema_net, betas: Tensor, meta: dict, opt, gen) -> None:
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"ema.net.{k}": v for k, v in ema_net.state_dict().items()})
    tensors["schedule.betas"] = betas.detach().clone()
    state = {"optimizer": opt.state_dict(), **generator_state(gen)}
    save_checkpoint(run_dir, step, tensors, meta, state)


def load_classifier(run_dir: Path, device: str = "cpu", ema: bool = True) -> Classifier:
    """A classifier run directory -> Classifier (EMA weights by default), on `device`, in eval mode."""
    tensors, meta, _ = load_checkpoint(latest_checkpoint(Path(run_dir)))
    if meta.get("task") not in TASKS:
        raise CheckpointError(f"{run_dir} is not a classifier run (its train.task is diffusion)")
    with must_fit(run_dir, "not a usable classifier run"):
        cfg = from_dict(meta["config"])
        spec, scaling = data_of(meta)
        net = build_classifier(cfg, spec.shape, int(meta["n_classes"]))
        prefix = "ema.net." if ema else "net."
        net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        betas = tensors["schedule.betas"].to(torch.float64)
    net.to(device).eval()
    return Classifier(net, betas.to(device), scaling, spec, int(meta["n_classes"]), meta["task"])
