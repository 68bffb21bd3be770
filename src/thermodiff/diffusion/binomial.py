"""Binomial diffusion q(x_t=1 | x_{t-1}) = x_{t-1}(1-beta_t) + p_bar beta_t, pi = Bernoulli(p_bar).

P §2.4.1, Table App.1. Tables are float64 and indexed by the paper's step t = 0..T. Every method
returns elementwise values (no reduction over bits); bound.py sums them. Reverse steps are
BernoulliStep (the logit of P(x_{t-1} = 1 | x_t)); posteriors and marginals are BernoulliProb (steps.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

from thermodiff.diffusion.distributions import bernoulli_entropy
from thermodiff.diffusion.steps import BernoulliProb, BernoulliStep, at


def _wlog(w: Tensor, log_p: Tensor) -> Tensor:
    """w * log_p with 0 * (-inf) = 0 (a zero-weight outcome contributes nothing)."""
    return torch.where(w == 0, torch.zeros_like(w), w * log_p)


def bernoulli_product(p_logit: Tensor, r_prob: Tensor) -> Tensor:
    """Logit of c d / (c d + (1-c)(1-d)), c = sigmoid(p_logit), d = r_prob (P Table App.1)."""
    return p_logit + (torch.log(r_prob) - torch.log1p(-r_prob))


class BinomialKernel:
    """Forward bit-flip chain, its closed-form marginals and posteriors, the edge terms of K."""

    name = "binomial"
    step_types = (BernoulliStep,)  # the reverse step kl and sample_from take

    def __init__(self, betas: Tensor, p_bar: float, learned_first_step: bool = False):
        if not 0.0 < p_bar < 1.0:
            raise ValueError(f"p_bar must lie in (0, 1), got {p_bar}")
        self.betas = betas.to(torch.float64)  # (T + 1,), betas[0] = 0; betas[T] may be exactly 1
        self.p_bar = float(p_bar)
        # Learned first step: p(x_0|x_1) comes from the network and enters K as the t = 1 KL term
        # (q(x_0|x_1,x_0) is a point mass, so it is -log p(x_0|x_1)); the paper fixes it instead.
        self.learned_first_step = learned_first_step
        # alpha_bar_t = prod_{s<=t} (1 - beta_s), in log space; exp(-inf) = 0 when beta_T = 1.
        log_alpha_bar = torch.cumsum(torch.log1p(-self.betas), 0)
        self.alpha_bar = torch.exp(log_alpha_bar)
        self.one_minus_alpha_bar = -torch.expm1(log_alpha_bar)

    @classmethod
    def build(cls, betas: Tensor, p_bar: float = 0.5, learned_first_step: bool = False) -> BinomialKernel:
        """The kernel for a model's settings (diffusion.p_bar, diffusion.first_step)."""
        return cls(betas, p_bar, learned_first_step)

    @property
    def T(self) -> int:
        """The number of forward steps."""
        return self.betas.numel() - 1

    @property
    def t_first(self) -> int:
        """The first reverse step the model learns: 1 when p(x_0|x_1) is learned, else 2."""
        return 1 if self.learned_first_step else 2

    def to(self, device: torch.device | str) -> BinomialKernel:
        """The kernel with its tables on `device`; itself when they are there already (as Tensor.to)."""
        if self.betas.device == torch.device(device):
            return self
        return BinomialKernel(self.betas.to(device), self.p_bar, self.learned_first_step)

    def noise_like(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Uniform(0, 1) frozen noise; bit = 1 where noise < P(bit = 1) (P §2.4.1)."""
        return torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)

    def _marginal(self, x0: Tensor, t: Tensor) -> Tensor:
        """q(x_t = 1 | x_0) = alpha_bar_t x_0 + (1 - alpha_bar_t) p_bar (P §2.4.1)."""
        return at(self.alpha_bar, t, x0) * x0 + at(self.one_minus_alpha_bar, t, x0) * self.p_bar

    def q_prob(self, x0: Tensor, t: Tensor) -> BernoulliProb:
        """q(x_t = 1 | x_0): the closed-form marginal (P §2.4.1)."""
        return BernoulliProb(self._marginal(x0, t).to(torch.float64))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = 1 where noise < q(x_t = 1 | x_0), as float 0/1 of x0's dtype (P §2.4.1)."""
        return (noise < self._marginal(x0, t)).to(x0.dtype)

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> BernoulliProb:
        """P(x_{t-1}=1 | x_t, x_0) = a_1 b / (a_1 b + a_0 (1 - b)) by Bayes (P §2.4.1)."""
        beta = at(self.betas, t, x0)
        b = self._marginal(x0, t - 1)  # q(x_{t-1} = 1 | x_0)
        stay = 1 - beta + self.p_bar * beta  # q(x_t = v | x_{t-1} = v), v = 1
        to_one, to_zero = self.p_bar * beta, (1 - self.p_bar) * beta  # flips 0 -> 1, 1 -> 0
        a1 = x_t * stay + (1 - x_t) * to_zero  # q(x_t | x_{t-1} = 1)
        a0 = x_t * to_one + (1 - x_t) * (1 - to_one)  # q(x_t | x_{t-1} = 0)
        num = a1 * b
        return BernoulliProb(num / (num + a0 * (1 - b)))

    def kl(self, q: BernoulliProb, p: BernoulliStep) -> Tensor:
        """KL(Bern(q) || Bern(sigmoid(logit))) per element in nats, via log-sigmoid (P §2.4.1)."""
        prob, logit = q.prob, p.logit
        return (
            torch.xlogy(prob, prob)
            + torch.xlogy(1 - prob, 1 - prob)
            - _wlog(prob, logsigmoid(logit))
            - _wlog(1 - prob, logsigmoid(-logit))
        )

    def _step_logit(self, x: Tensor, t: Tensor) -> Tensor:
        """logit of x (1 - beta_t) + p_bar beta_t, both tails computed directly (P §2.4.1)."""
        beta = at(self.betas, t, x)
        one = x * (1 - beta) + self.p_bar * beta
        zero = (1 - x) * (1 - beta) + (1 - self.p_bar) * beta
        return torch.log(one) - torch.log(zero)

    def equilibrium_reversal(self, x_t: Tensor, t: Tensor) -> BernoulliStep:
        """Time-reversal of step t under pi: the same kernel, pi being reversible (P App. B.2)."""
        return BernoulliStep(self._step_logit(x_t.to(torch.float64), t))

    def sample_from(self, p: BernoulliStep, generator: torch.Generator | None = None) -> Tensor:
        """Bernoulli(sigmoid(logit)) bits, float 0/1; finite for logits of +-inf (P §2.4.1)."""
        logit = p.logit
        u = torch.rand(logit.shape, generator=generator, device=logit.device, dtype=logit.dtype)
        return (u < torch.sigmoid(logit)).to(logit.dtype)

    def prior_sample(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Bernoulli(p_bar) bits, float64 (P §2.4.1)."""
        u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
        return (u < self.p_bar).to(torch.float64)

    def log_prior(self, x: Tensor) -> Tensor:
        """log pi(x) = log Bernoulli(x; p_bar) per element (L_null per bit, P §2.4.1)."""
        return x * math.log(self.p_bar) + (1 - x) * math.log1p(-self.p_bar)

    # --- the edge terms of K, exact per example (elementwise, nats) ---
    def prior_term(self, x0: Tensor) -> Tensor:
        """-KL(q(x_T | x_0) || pi): zero when beta_T = 1 (P §2.4.1)."""
        m = self._marginal(x0, self._full(x0, self.T))
        pi = torch.full_like(m, self.p_bar)  # xlogy on both sides: exactly 0 when m == pi
        kl = torch.xlogy(m, m) - torch.xlogy(m, pi) + torch.xlogy(1 - m, 1 - m)
        return -(kl - torch.xlogy(1 - m, 1 - pi))

    def edge_term(self, x0: Tensor) -> Tensor:
        """E_{q(x_1|x_0)} log p(x_0 | x_1), p the fixed reversal of step 1 (P App. B.2); zero when
        the first step is learned (its term is then the t = 1 KL of bound.py)."""
        if self.learned_first_step:
            return torch.zeros_like(x0, dtype=torch.float64)
        one = self._full(x0, 1)
        q1 = self._marginal(x0, one)  # q(x_1 = 1 | x_0)
        total = torch.zeros_like(q1)
        for v, weight in ((1.0, q1), (0.0, 1 - q1)):
            logit = self._step_logit(torch.full_like(x0, v), one)  # reversal at x_1 = v
            log_p = torch.where(x0 > 0.5, logsigmoid(logit), logsigmoid(-logit))
            total = total + _wlog(weight, log_p)
        return total

    def entropy_T(self, x0: Tensor) -> Tensor:
        """H_q(X_T | X_0) per element: H_2(q(x_T = 1 | x_0)) (P §2.4.1)."""
        return bernoulli_entropy(self._marginal(x0, self._full(x0, self.T)))

    def entropy_1(self, x0: Tensor) -> Tensor:
        """H_q(X_1 | X_0) per element: H_2(x_0 (1 - beta_1) + p_bar beta_1) (P §2.4.1)."""
        return bernoulli_entropy(self._marginal(x0, self._full(x0, 1)))

    def entropy_prior(self, x0: Tensor) -> Tensor:
        """H_p(X_T) per element: H_2(p_bar) (P §2.4.1)."""
        return bernoulli_entropy(torch.full_like(x0, self.p_bar))

    @staticmethod
    def _full(x0: Tensor, step: int) -> Tensor:
        """A (B,) long tensor of `step`, for indexing the tables per example."""
        return torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
