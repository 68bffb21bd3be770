"""What training minimises: the negative bound -K (P eq. 14) of a diffusion model, and the
cross-entropy of a noisy classifier p(y | x_t, t) (ADM 4.1). Each says what it logs and saves."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from thermodiff.config import Config
from thermodiff.data import Dataset, DataSpec, Scaling
from thermodiff.diffusion.bound import BoundTerms, bound_stochastic, draw_t, to_bits, uniform_t_probs
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.model.assemble import DiffusionModel, dims
from thermodiff.run.load import model_tensors, run_meta


def negative_bound(
    model: DiffusionModel, net: nn.Module, x0: Tensor, gen: torch.Generator, shard: slice = slice(None)
) -> tuple[Tensor, BoundTerms]:
    """The training loss -K in nats per dimension (P eq. 14) on this rank's shard of the global batch
    x0, t drawn uniformly over the learned steps and the noise drawn for the whole batch."""
    kernel = model.kernel()
    t = draw_t(x0.shape[0], uniform_t_probs(kernel, x0.device), gen)
    noise = kernel.noise_like(x0, gen)
    fn = model.model_fn(kernel, net)
    terms, _ = bound_stochastic(kernel, fn, x0[shard], t=t[shard], noise=noise[shard])
    return -terms.K.mean() / x0[0].numel(), terms


def trainable(model: DiffusionModel) -> list[Tensor]:
    """The network's parameters and the learned schedule's logits (none for a fixed schedule)."""
    return list(model.net.parameters()) + model.schedule.parameters()


class NegativeBound:
    """-K per dimension of a diffusion model; logs K in the data's unit and per dimension."""

    reseeds_dropout = True
    progress_key = "K_bits"

    def __init__(self, model: DiffusionModel, cfg: Config, ds: Dataset):
        self.model, self.net, self.cfg, self.ds = model, model.net, cfg, ds

    def extra_params(self) -> list[Tensor]:
        return self.model.schedule.parameters()

    def loss(self, net, x0, labels, gen, shard) -> tuple[Tensor, Tensor]:
        net = self.model.fast.compiled(net)  # torch.compile only on a GPU with train.compile
        loss, terms = negative_bound(self.model, net, x0, gen, shard)
        return loss, terms.K.detach().mean()

    def summary(self, window: list[Tensor]) -> dict[str, float]:
        return {"K": sum(v.item() for v in window) / len(window)}

    def record(self, means: dict[str, float]) -> dict:
        k_mean, spec = means["K"], self.ds.spec
        return {
            "K_bits": to_bits(k_mean) / spec.units_per_example,  # evaluate's unit
            "unit": spec.unit,
            "K_bits_per_dim": to_bits(k_mean) / dims(spec.shape),
        }

    def checkpoint(self, ema_net: nn.Module, ema_extra: list[Tensor]) -> tuple[dict, dict, dict]:
        schedule = self.model.schedule
        tensors = model_tensors(self.net, schedule)
        ema_betas = schedule.betas(*ema_extra).detach().clone()  # fixed schedules: no shared storage
        tensors.update({f"ema.net.{k}": v for k, v in ema_net.state_dict().items()})
        tensors["ema.schedule.betas"] = ema_betas
        state = {
            "ema_schedule": [p.detach().cpu() for p in ema_extra],
            "schedule_logits": [p.detach().cpu() for p in schedule.parameters()],
        }
        return tensors, run_meta(self.cfg, self.ds, self.model), state

    def restore(self, tensors: dict, state: dict, ema_extra: list[Tensor]) -> None:
        schedule = self.model.schedule
        schedule.load_state_dict({"schedule.betas": tensors["schedule.betas"]})
        with torch.no_grad():
            for p, saved in zip(schedule.parameters(), state["schedule_logits"], strict=True):
                p.copy_(saved)
            for p, saved in zip(ema_extra, state["ema_schedule"], strict=True):
                p.copy_(saved)


@dataclass
class ClassifierData:
    """What a classifier run saves besides weights: its data in the guided model's space."""

    spec: DataSpec
    scaling: Scaling
    n_classes: int


class CrossEntropy:
    """Cross-entropy of p(y | x_t, t), x_t ~ q(x_t | x_0) at t ~ U{0..T} (clean classifier: t = 0)
    (ADM 4.1); logs the loss in nats and the training accuracy."""

    reseeds_dropout = False  # the classifier has no dropout
    progress_key = None

    def __init__(self, net: nn.Module, betas: Tensor, cfg: Config, data: ClassifierData):
        self.net, self.betas, self.cfg, self.data = net, betas, cfg, data
        self.kernel = GaussianKernel(betas.to(next(net.parameters()).device))
        self.noisy = cfg.train.task == "classifier"

    def extra_params(self) -> list[Tensor]:
        return []

    def loss(self, net, x0, labels, gen, shard) -> tuple[Tensor, Tensor]:
        high = self.kernel.T + 1 if self.noisy else 1
        t = torch.randint(0, high, (x0.shape[0],), generator=gen, device=x0.device)
        x_t = self.kernel.q_sample(x0, t, self.kernel.noise_like(x0, gen))  # t = 0: x_0 itself
        y = labels[shard]
        logits = net(x_t[shard].float(), t[shard])
        loss = F.cross_entropy(logits, y)
        return loss, torch.stack([loss.detach(), (logits.argmax(1) == y).float().mean()])  # no sync

    def summary(self, window: list[Tensor]) -> dict[str, float]:
        loss_mean, acc_mean = torch.stack(window).double().mean(0).tolist()
        return {"loss_nats": loss_mean, "train_accuracy": acc_mean}

    def record(self, means: dict[str, float]) -> dict:
        return dict(means)

    def checkpoint(self, ema_net: nn.Module, ema_extra: list[Tensor]) -> tuple[dict, dict, dict]:
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors.update({f"ema.net.{k}": v for k, v in ema_net.state_dict().items()})
        tensors["schedule.betas"] = self.betas.detach().clone()
        meta = {
            "config": self.cfg.to_dict(),
            "spec": asdict(self.data.spec),
            "scaling": asdict(self.data.scaling),
            "n_classes": self.data.n_classes,
            "task": self.cfg.train.task,
        }
        return tensors, meta, {}

    def restore(self, tensors: dict, state: dict, ema_extra: list[Tensor]) -> None:
        pass  # the betas are fixed: fit restores the network and its EMA
