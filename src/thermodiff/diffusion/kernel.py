"""The Kernel protocol: what every forward chain q(x_t | x_{t-1}) offers the bound, the samplers and the
multipliers (P §2.1, §2.4.1, eq. 14, App. B), and the registry of kernels by their config name.

Tables are float64 and indexed by the paper's step t = 0..T; methods return elementwise values (no
reduction over dimensions) unless they say otherwise; bound.py sums them. Reverse steps are the
step types of steps.py: a kernel lists those it takes in `step_types` (the first is its diagonal
step, the one equilibrium_reversal returns).
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.steps import Step


@runtime_checkable
class Kernel(Protocol):
    """A forward chain, its closed-form marginals and posteriors, and the edge terms of K (P eq. 14)."""

    name: ClassVar[str]  # the config's diffusion.kernel
    step_types: ClassVar[tuple[type[Step], ...]]  # the reverse step types kl and sample_from take
    betas: Tensor  # (T + 1,) float64, betas[0] = 0

    @classmethod
    def build(cls, betas: Tensor, p_bar: float = 0.5, learned_first_step: bool = False) -> Kernel:
        """The kernel for a model's settings (those it has no use for are ignored)."""

    @property
    def T(self) -> int:
        """The number of forward steps."""

    @property
    def t_first(self) -> int:
        """The first reverse step the model learns (2: step 1 is the fixed reversal, P App. B.2)."""

    def to(self, device: torch.device | str) -> Kernel:
        """The kernel with its tables on `device` (itself when they are there already)."""

    def noise_like(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Frozen noise for q_sample, shaped as x0."""

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t ~ q(x_t | x_0), reparameterized by the frozen noise."""

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Step:
        """q(x_{t-1} | x_t, x_0) (P App. B)."""

    def kl(self, q: Step, p: Step) -> Tensor:
        """KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) in nats, p one of step_types (P eq. 14)."""

    def equilibrium_reversal(self, x_t: Tensor, t: Tensor) -> Step:
        """The time-reversal of step t under pi, exact when q(x) = pi (P App. B.2)."""

    def sample_from(self, p: Step, generator: torch.Generator | None = None) -> Tensor:
        """x_{t-1} ~ p, p one of step_types (a Gaussian kernel also takes a deterministic PointStep)."""

    def prior_sample(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """x_T ~ pi, float64."""

    def log_prior(self, x: Tensor) -> Tensor:
        """log pi(x) per element."""

    def prior_term(self, x0: Tensor) -> Tensor:
        """-KL(q(x_T | x_0) || pi) per element."""

    def edge_term(self, x0: Tensor) -> Tensor:
        """E_{q(x_1|x_0)} log p(x_0 | x_1) per element, p the fixed first reverse step (P App. B.2)."""

    def entropy_T(self, x0: Tensor) -> Tensor:
        """H_q(X_T | X_0) per element."""

    def entropy_1(self, x0: Tensor) -> Tensor:
        """H_q(X_1 | X_0) per element."""

    def entropy_prior(self, x0: Tensor) -> Tensor:
        """H_p(X_T) per element."""


KERNELS: dict[str, type[Kernel]] = {"gaussian": GaussianKernel, "binomial": BinomialKernel}
