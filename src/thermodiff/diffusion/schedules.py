"""Beta schedules beta_0..beta_T (index = paper step t; beta_0 = 0 is unused). P 2.4.1, App. D."""

from __future__ import annotations

import math

import torch
from torch import Tensor

BETA_MIN, BETA_MAX = 1e-6, 1.0 - 1e-5  # the reference code's clamp


def _with_step0(betas_1_to_T: Tensor) -> Tensor:
    return torch.cat([torch.zeros(1, dtype=torch.float64), betas_1_to_T.to(torch.float64)])


def paper_betas(T: int, beta_1: float) -> Tensor:
    """beta_1 fixed; beta_t = 1/(T - t + 2) for t >= 2, ending at 1/2 so alpha_bar_T ~ 1/T (ref. code)."""
    t = torch.arange(2, T + 1, dtype=torch.float64)
    return _with_step0(torch.cat([torch.tensor([beta_1], dtype=torch.float64), 1.0 / (T - t + 2)]))


def linear_betas(T: int, beta_1: float, beta_max: float) -> Tensor:
    """Linear from beta_1 to beta_max (Ho et al. 2020 use 1e-4 .. 0.02 at T = 1000)."""
    return _with_step0(torch.linspace(beta_1, beta_max, T, dtype=torch.float64))


def cosine_betas(T: int, beta_1: float, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal 2021 eq. 17, betas clipped at 0.999; beta_1 replaced by the fixed beta_1."""
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((steps / T + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    betas[0] = beta_1
    return _with_step0(betas)


def log_snr_betas(T: int, beta_1: float, alpha_bar_T: float = 1e-4) -> Tensor:
    """log SNR_t = log(alpha_bar_t / (1 - alpha_bar_t)) linear in t from step 1 (beta_1) to T
    (alpha_bar_T): noise variances evenly spaced in log, as VDM's schedule starts (Kingma et al. 2021)."""
    lo, hi = math.log((1 - beta_1) / beta_1), math.log(alpha_bar_T / (1 - alpha_bar_T))
    log_alpha_bar = torch.nn.functional.logsigmoid(torch.linspace(lo, hi, T, dtype=torch.float64))
    log_alpha_bar = torch.cat([torch.zeros(1, dtype=torch.float64), log_alpha_bar])
    betas = -torch.expm1(log_alpha_bar[1:] - log_alpha_bar[:-1])
    betas[0] = beta_1
    return _with_step0(betas)


def binomial_betas(T: int) -> Tensor:
    """beta_t = 1/(T - t + 1): each step erases 1/T of the original signal (P 2.4.1, footnote 2)."""
    t = torch.arange(1, T + 1, dtype=torch.float64)
    return _with_step0(1.0 / (T - t + 1))


class Schedule:
    """Betas beta_0..beta_T; when learnable, beta_2..beta_T are sigmoid(logits) trained on K (P 2.4.1)."""

    def __init__(self, betas: Tensor, learnable: bool = False):
        self.fixed = betas.to(torch.float64).clone()
        self.learnable = learnable
        b = self.fixed[2:].clamp(BETA_MIN, BETA_MAX)
        self.logits = torch.log(b) - torch.log1p(-b)
        self.logits.requires_grad_(learnable)

    @property
    def T(self) -> int:
        return self.fixed.numel() - 1

    def betas(self, logits: Tensor | None = None) -> Tensor:
        """(T + 1,) float64; differentiable in the logits when learnable (or in `logits` if given)."""
        if not self.learnable:
            return self.fixed
        logits = self.logits if logits is None else logits
        learned = torch.sigmoid(logits).clamp(BETA_MIN, BETA_MAX)
        return torch.cat([self.fixed[:2].to(learned.device), learned])

    def parameters(self) -> list[Tensor]:
        return [self.logits] if self.learnable else []

    def state_dict(self) -> dict[str, Tensor]:
        return {"schedule.betas": self.betas().detach().cpu().contiguous()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        betas = state["schedule.betas"].to(self.fixed.device, torch.float64)  # stays where it was moved
        if betas.shape != self.fixed.shape:
            raise ValueError(f"schedule has {betas.numel() - 1} steps, expected {self.T}")
        self.fixed = betas.clone()
        b = betas[2:].clamp(BETA_MIN, BETA_MAX)
        with torch.no_grad():
            self.logits = (torch.log(b) - torch.log1p(-b)).requires_grad_(self.learnable)

    def to(self, device: torch.device | str) -> Schedule:
        self.fixed = self.fixed.to(device)
        with torch.no_grad():
            self.logits = self.logits.detach().to(device).requires_grad_(self.learnable)
        return self


# config name -> builder(T, beta_1, beta_max, learned_init): the registry of schedules, whose names are
# the config's choices; "learned" starts from learned_init (one of LEARNED_INITS), then is trained on K
SCHEDULES = {
    "paper": lambda T, beta_1, beta_max, init: paper_betas(T, beta_1),
    "log_snr": lambda T, beta_1, beta_max, init: log_snr_betas(T, beta_1),
    "linear": lambda T, beta_1, beta_max, init: linear_betas(T, beta_1, beta_max),
    "cosine": lambda T, beta_1, beta_max, init: cosine_betas(T, beta_1),
    "learned": lambda T, beta_1, beta_max, init: SCHEDULES[init](T, beta_1, beta_max, init),
    "binomial": lambda T, beta_1, beta_max, init: binomial_betas(T),
}
LEARNED_INITS = ("paper", "log_snr")


def make_schedule(
    name: str, T: int, beta_1: float, beta_max: float = 0.5, learned_init: str = "paper"
) -> Schedule:
    """Config name -> Schedule (SCHEDULES); `learned` starts from learned_init."""
    return Schedule(SCHEDULES[name](T, beta_1, beta_max, learned_init), learnable=name == "learned")
