"""A trained classifier p(y | x_t, t) as used after training: guidance toward a class (ADM Alg. 1;
P 2.5's r(x)) and the accuracy of a clean classifier (t = 0) judging samples."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from thermodiff.data import DataSpec, Scaling
from thermodiff.errors import CheckpointError, ThermodiffError
from thermodiff.nets.classifier import TASKS, NoisyClassifier, build_classifier
from thermodiff.run.checkpoint import must_fit, state_dict_under
from thermodiff.run.load import config_of, latest_state


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
        """(x_t, t) -> log p(label | x_t, t): the log_prob_fn of multipliers.ClassifierGuidance."""
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


def load_classifier(run_dir: Path, device: str = "cpu", ema: bool = True) -> Classifier:
    """A classifier run directory -> Classifier (EMA weights by default), on `device`, in eval mode."""
    tensors, meta = latest_state(run_dir)
    if meta.get("task") not in TASKS:
        raise CheckpointError(f"{run_dir} is not a classifier run (its train.task is diffusion)")
    with must_fit(run_dir, "not a usable classifier run"):
        cfg, spec, scaling = config_of(meta)
        net = build_classifier(cfg.model, spec.shape, int(meta["n_classes"]), seed=cfg.train.seed)
        net.load_state_dict(state_dict_under(tensors, "ema.net." if ema else "net."))
        betas = tensors["schedule.betas"].to(torch.float64)
    net.to(device).eval()
    return Classifier(net, betas.to(device), scaling, spec, int(meta["n_classes"]), meta["task"])
