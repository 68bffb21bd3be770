"""Binomial diffusion (PAPER.md 2) against analytic truths: enumeration over {0, 1} and the
one-step kernel written here, never the kernel's own closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from thermodiff.diffusion.binomial import BinomialKernel, bernoulli_product
from thermodiff.diffusion.bound import bound_exact, bound_stochastic, mean_and_stderr
from thermodiff.diffusion.schedules import binomial_betas
from thermodiff.diffusion.steps import BernoulliProb, BernoulliStep

EXACT = 1e-12  # tolerance for float64 closed forms vs enumeration


def step_p1(x_prev: float, beta: float, p_bar: float) -> float:
    """The one-step kernel q(x_t = 1 | x_{t-1}) of PAPER.md 2."""
    return x_prev * (1 - beta) + p_bar * beta


def bern(x: float, p1: float) -> float:
    return p1 if x == 1 else 1 - p1


def marginal_p1(x0: float, t: int, betas: list[float], p_bar: float) -> float:
    """q(x_t = 1 | x_0) by propagating the one-step kernel t times (law of total probability)."""
    p = x0
    for s in range(1, t + 1):
        p = p * step_p1(1, betas[s], p_bar) + (1 - p) * step_p1(0, betas[s], p_bar)
    return p


def h2(p: float) -> float:
    return -sum(q * math.log(q) for q in (p, 1 - p) if q > 0)


def longs(*steps: int) -> torch.Tensor:
    return torch.tensor(steps, dtype=torch.long)


@pytest.mark.parametrize("T", [1, 10, 50, 2000])
@pytest.mark.parametrize("p_bar", [0.2, 0.5, 0.7])
def test_marginal_closed_form_reaches_pi(T: int, p_bar: float) -> None:
    k = BinomialKernel(binomial_betas(T), p_bar)
    betas = binomial_betas(T).tolist()
    x0 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    assert k.q_prob(x0, longs(T, T)).prob.flatten().tolist() == pytest.approx([p_bar] * 2, abs=EXACT)
    for t in sorted({1, T // 2, max(T - 1, 1), T}):
        got = k.q_prob(x0, longs(t, t)).prob.flatten().tolist()
        want = [marginal_p1(v, t, betas, p_bar) for v in (0.0, 1.0)]
        assert got == pytest.approx(want, abs=1e-10)  # 2000-step recursion rounding
        assert k.alpha_bar[t].item() == pytest.approx((T - t) / T, abs=EXACT)
    assert k.alpha_bar[T].item() == 0.0


def test_marginal_matches_step_by_step_monte_carlo() -> None:
    """N chains of single steps to t = 25 of T = 50; 5 sigma binomial tolerance."""
    T, t, p_bar, n = 50, 25, 0.2, 200_000
    g = torch.Generator().manual_seed(0)
    k = BinomialKernel(binomial_betas(T), p_bar)
    betas = binomial_betas(T)
    for v in (0.0, 1.0):
        x = torch.full((n,), v, dtype=torch.float64)
        for s in range(1, t + 1):
            p1 = x * (1 - betas[s]) + p_bar * betas[s]
            x = (torch.rand(n, generator=g, dtype=torch.float64) < p1).double()
        p = k.q_prob(torch.tensor([[v]], dtype=torch.float64), longs(t)).prob.item()
        tol = 5 * math.sqrt(p * (1 - p) / n)
        assert x.mean().item() == pytest.approx(p, abs=tol)
        x0 = torch.full((n, 1), v, dtype=torch.float64)
        xt = k.q_sample(x0, torch.full((n,), t), k.noise_like(x0, g))
        assert xt.dtype == x0.dtype and set(xt.unique().tolist()) <= {0.0, 1.0}
        assert xt.mean().item() == pytest.approx(p, abs=tol)


@pytest.mark.parametrize("T", [10, 50])
@pytest.mark.parametrize("p_bar", [0.2, 0.5, 0.7])
def test_posterior_is_bayes_by_enumeration(T: int, p_bar: float) -> None:
    k = BinomialKernel(binomial_betas(T), p_bar)
    betas = binomial_betas(T).tolist()
    combos = [(a, b) for a in (0.0, 1.0) for b in (0.0, 1.0)]
    x0 = torch.tensor([[a] for a, _ in combos], dtype=torch.float64)
    xt = torch.tensor([[b] for _, b in combos], dtype=torch.float64)
    for t in sorted({1, 2, T // 2, T - 1, T}):
        got = k.q_posterior(x0, xt, torch.full((4,), t)).prob.flatten().tolist()
        want = []
        for a, b in combos:
            prev = marginal_p1(a, t - 1, betas, p_bar)
            joint = {v: bern(v, prev) * bern(b, step_p1(v, betas[t], p_bar)) for v in (0, 1)}
            want.append(joint[1] / (joint[0] + joint[1]))
        assert got == pytest.approx(want, abs=EXACT)


def test_equilibrium_reversal_is_bayes_under_pi() -> None:
    """P(x_{t-1}=1 | x_t) = q(x_t | x_{t-1}=1) pi(1) / pi(x_t), enumerated (P App. B.2)."""
    T, p_bar = 10, 0.2
    k = BinomialKernel(binomial_betas(T), p_bar)
    betas = binomial_betas(T).tolist()
    xt = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    for t in (1, 5, T):
        got = torch.sigmoid(k.equilibrium_reversal(xt, longs(t, t)).logit).flatten().tolist()
        want = [bern(b, step_p1(1, betas[t], p_bar)) * p_bar / bern(b, p_bar) for b in (0, 1)]
        assert got == pytest.approx(want, abs=EXACT)


def test_kl_is_bernoulli_kl_by_enumeration() -> None:
    k = BinomialKernel(binomial_betas(10), 0.2)
    qs = [0.0, 1e-9, 0.1, 0.5, 0.93, 1.0]
    logits = [-8.0, -1.5, 0.0, 0.3, 4.0, 8.0]
    q = torch.tensor([a for a in qs for _ in logits], dtype=torch.float64)
    lg = torch.tensor([b for _ in qs for b in logits], dtype=torch.float64)
    got = k.kl(BernoulliProb(q), BernoulliStep(lg)).tolist()
    for g, a, b in zip(got, q.tolist(), lg.tolist(), strict=True):
        p = 1 / (1 + math.exp(-b))
        want = sum(w * math.log(w / r) for w, r in ((a, p), (1 - a, 1 - p)) if w > 0)
        assert g == pytest.approx(want, rel=1e-9, abs=EXACT)


def test_kl_and_sampling_finite_at_extreme_logits() -> None:
    k = BinomialKernel(binomial_betas(10), 0.2)
    big = torch.tensor([1e4, -1e4, math.inf, -math.inf], dtype=torch.float64)
    match = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    assert k.kl(BernoulliProb(match), BernoulliStep(big)).tolist() == [0.0] * 4
    half = k.kl(BernoulliProb(torch.full((2,), 0.5, dtype=torch.float64)), BernoulliStep(big[:2]))
    assert half.tolist() == pytest.approx([0.5 * 1e4 - 0.5 * math.log(2) * 2] * 2, rel=1e-9)
    bits = k.sample_from(BernoulliStep(big), torch.Generator().manual_seed(1))
    assert bits.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_sampling_frequencies() -> None:
    """5 sigma binomial tolerance on 100k draws."""
    n, g = 100_000, torch.Generator().manual_seed(2)
    k = BinomialKernel(binomial_betas(10), 0.2)
    prior = k.prior_sample((n,), g)
    assert prior.dtype == torch.float64
    assert prior.mean().item() == pytest.approx(0.2, abs=5 * math.sqrt(0.16 / n))
    bits = k.sample_from(BernoulliStep(torch.full((n,), 1.2, dtype=torch.float64)), g)
    p = 1 / (1 + math.exp(-1.2))
    assert bits.mean().item() == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("T", [1, 10, 2000])
@pytest.mark.parametrize("p_bar", [0.2, 0.5])
def test_edge_and_entropy_terms_by_enumeration(T: int, p_bar: float) -> None:
    k = BinomialKernel(binomial_betas(T), p_bar)
    b1 = binomial_betas(T)[1].item()
    x0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    want_edge, want_h1 = [], []
    for a in (0.0, 1.0):
        q1 = {v: bern(v, step_p1(a, b1, p_bar)) for v in (0, 1)}
        # p(x_0 | x_1) = q(x_1 | x_0) pi(x_0) / pi(x_1): the reversal of step 1 under pi, by Bayes.
        rev = {v: q1[v] * bern(a, p_bar) / bern(v, p_bar) for v in (0, 1)}
        want_edge.append(sum(q1[v] * math.log(rev[v]) for v in (0, 1) if q1[v] > 0))
        want_h1.append(h2(q1[1]))
    assert k.edge_term(x0).flatten().tolist() == pytest.approx(want_edge, abs=EXACT)
    assert k.entropy_1(x0).flatten().tolist() == pytest.approx(want_h1, abs=EXACT)
    assert k.entropy_T(x0).flatten().tolist() == pytest.approx([h2(p_bar)] * 2, abs=EXACT)
    assert k.prior_term(x0).flatten().tolist() == [0.0, 0.0]  # beta_T = 1: q(x_T|x_0) = pi
    log_pi = [math.log(bern(a, p_bar)) for a in (0.0, 1.0)]
    assert k.log_prior(x0).flatten().tolist() == pytest.approx(log_pi, abs=EXACT)


def test_prior_term_when_chain_does_not_reach_pi() -> None:
    """Drop the last step: beta_{T'} = 1/2 < 1, so -KL(q(x_T|x_0) || pi) < 0, by enumeration."""
    betas, p_bar = binomial_betas(10)[:-1], 0.3
    k = BinomialKernel(betas, p_bar)
    x0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    want = []
    for a in (0.0, 1.0):
        m = marginal_p1(a, 9, betas.tolist(), p_bar)
        want.append(-sum(bern(v, m) * math.log(bern(v, m) / bern(v, p_bar)) for v in (0, 1)))
    assert k.prior_term(x0).flatten().tolist() == pytest.approx(want, abs=EXACT)
    assert max(want) < 0


@pytest.mark.parametrize("learned_first_step", [False, True])
def test_bound_of_equilibrium_reversal_is_log_pi(learned_first_step: bool) -> None:
    """p = reversal of q under pi makes p(x_0) = pi(x_0), so E[K] = log pi(x_0): K - L_null = 0,
    with the first step fixed (edge term) or given to the model (a t = 1 KL term).

    Tolerance: 3 standard errors, and 0.1 nats per 20-bit sequence for bound_exact."""
    T, p_bar, n, d = 50, 0.2, 8000, 20
    g = torch.Generator().manual_seed(3)
    k = BinomialKernel(binomial_betas(T), p_bar, learned_first_step)
    x0 = (torch.rand(n, d, generator=g, dtype=torch.float64) < 0.5).double()
    for bound in (bound_exact, bound_stochastic):
        terms, _ = bound(k, k.equilibrium_reversal, x0, g)
        assert all(torch.isfinite(v).all() for v in vars(terms).values())
        mean, se = mean_and_stderr(terms.K - terms.log_null)
        assert abs(mean) <= 3 * se, (bound.__name__, mean, se)
        if bound is bound_exact:  # the stochastic one carries a (T - 1) x importance weight
            assert abs(mean) < 0.1, (mean, se)  # se ~ 0.02; log pi(x_0) ~ -18 nats


def heartbeats() -> torch.Tensor:
    """The 5 heartbeat sequences: length 20, a 1 every 5th bin, first pulse in bins 0..4."""
    x = torch.zeros(5, 20, dtype=torch.float64)
    for first in range(5):
        x[first, first::5] = 1.0
    return x


@pytest.mark.parametrize("learned_first_step", [False, True])
def test_heartbeat_bound_does_not_exceed_true_log_likelihood(learned_first_step: bool) -> None:
    """Gibbs: mean_x0 K <= mean_x0 log p(x_0) <= log(1/5) for any reverse chain; 3 stderr."""
    T, p_bar, reps = 50, 0.2, 200
    g = torch.Generator().manual_seed(4)
    k = BinomialKernel(binomial_betas(T), p_bar, learned_first_step)
    x0 = heartbeats().repeat(reps, 1)
    log_pi = 4 * math.log(p_bar) + 16 * math.log(1 - p_bar)
    assert log_pi < math.log(1 / 5)  # about -10.0 nats vs -1.61
    models = {
        "equilibrium": k.equilibrium_reversal,
        "const_0": lambda x, t: BernoulliStep(torch.zeros_like(x)),
        "const_pbar": lambda x, t: BernoulliStep(torch.full_like(x, math.log(p_bar / (1 - p_bar)))),
        "copy": lambda x, t: BernoulliStep(6.0 * (2 * x - 1)),
        "flip": lambda x, t: BernoulliStep(-3.0 * (2 * x - 1)),
    }
    for name, fn in models.items():
        terms, _ = bound_exact(k, fn, x0, g)
        mean, se = mean_and_stderr(terms.K)
        assert mean <= math.log(1 / 5) + 3 * se, (name, mean, se)
    terms, _ = bound_exact(k, k.equilibrium_reversal, x0, g)
    mean, se = mean_and_stderr(terms.K)
    assert mean == pytest.approx(log_pi, abs=3 * se)


def test_learned_first_step_term_by_enumeration() -> None:
    """t = 1 with a learned first step: q(x_0|x_1,x_0) is a point mass, so the KL is -log p(x_0|x_1)
    for any logits; with p the fixed reversal, E_{x_1} of it is minus the paper's edge term."""
    T, p_bar = 10, 0.2
    fixed = BinomialKernel(binomial_betas(T), p_bar)
    learned = BinomialKernel(binomial_betas(T), p_bar, learned_first_step=True)
    assert (fixed.t_first, learned.t_first) == (2, 1)
    beta_1 = binomial_betas(T).tolist()[1]
    one = longs(1)
    for x0 in (0.0, 1.0):
        x0_t = torch.tensor([[x0]], dtype=torch.float64)
        assert learned.edge_term(x0_t).item() == 0.0
        expected = 0.0
        for x1 in (0.0, 1.0):
            x1_t = torch.tensor([[x1]], dtype=torch.float64)
            for logit in (-3.0, 0.4, 7.0):
                kl = learned.kl(
                    learned.q_posterior(x0_t, x1_t, one),
                    BernoulliStep(torch.tensor([[logit]], dtype=torch.float64)),
                )
                assert kl.item() == pytest.approx(-math.log(bern(x0, 1 / (1 + math.exp(-logit)))), rel=1e-12)
            p_rev = learned.equilibrium_reversal(x1_t, one)
            kl = learned.kl(learned.q_posterior(x0_t, x1_t, one), p_rev).item()
            expected -= bern(x1, step_p1(x0, beta_1, p_bar)) * kl
        assert fixed.edge_term(x0_t).item() == pytest.approx(expected, abs=EXACT)


def test_sampler_uses_the_network_for_a_learned_first_step() -> None:
    """The last step x_0 ~ p(x_0|x_1) comes from model_fn when learned, the fixed reversal if not."""
    from thermodiff.sampling.ancestral import sample

    def fn(x: torch.Tensor, t: torch.Tensor) -> BernoulliStep:  # all ones; at t = 1 all zeros
        return BernoulliStep(torch.where(t[:, None] == 1, -math.inf, math.inf).expand_as(x).double())

    g = torch.Generator().manual_seed(0)
    learned = sample(BinomialKernel(binomial_betas(20), 0.2, True), fn, (30,), n=50, generator=g)
    assert learned.sum().item() == 0.0
    # fixed reversal of step 1 from x_1 = 1: P(x_0 = 1) = (1 - beta_1 (1 - p_bar)) = 0.96
    fixed = sample(BinomialKernel(binomial_betas(20), 0.2), fn, (30,), n=50, generator=g)
    assert 0.93 < fixed.mean().item() < 0.99


def heartbeat_oracle(T: int, p_bar: float):
    """The best per-bit reverse chain for the heartbeat: P(x_{t-1,i} = 1 | x_t) by Bayes over the 5
    sequences, written here from the one-step kernel. Returns model_fn (logits)."""
    seqs = heartbeats()
    betas = binomial_betas(T)
    keep = torch.cumprod(1 - betas, 0)  # alpha_bar_t: P(bit keeps x_0 rather than being redrawn)

    def marg(s: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:  # q(x_tt = 1 | x_0 = s)
        a = keep[tt][:, None]
        return a * s + (1 - a) * p_bar

    def oracle(x: torch.Tensor, t: torch.Tensor) -> BernoulliStep:
        b = betas[t][:, None]
        logw, post = [], []
        for s in seqs:
            m = marg(s, t)
            logw.append((torch.xlogy(x, m) + torch.xlogy(1 - x, 1 - m)).sum(1))
            prev = marg(s, t - 1)  # q(x_{t-1} = 1 | x_0)
            up = torch.where(x > 0, 1 - b + b * p_bar, b * (1 - p_bar))  # q(x_t | x_{t-1} = 1)
            down = torch.where(x > 0, b * p_bar, 1 - b * p_bar)  # q(x_t | x_{t-1} = 0)
            post.append(up * prev / (up * prev + down * (1 - prev)))
        w = torch.softmax(torch.stack(logw), 0)[..., None]
        m = (w * torch.stack(post)).sum(0)
        return BernoulliStep(torch.log(m) - torch.log1p(-m))

    return oracle


def test_heartbeat_bayes_optimal_chain_with_learned_first_step_is_within_001_bits() -> None:
    """The Bayes-optimal per-bit chain with the first step learned: K within 0.01 bits of log2(1/5) at
    T = 2000, so the bound itself leaves room for the issue's target. 250 sequences, 3 stderr."""
    T, p_bar = 2000, 0.2
    k = BinomialKernel(binomial_betas(T), p_bar, learned_first_step=True)
    oracle = heartbeat_oracle(T, p_bar)
    terms, _ = bound_exact(k, oracle, heartbeats().repeat(50, 1), torch.Generator().manual_seed(0))
    mean, se = mean_and_stderr(terms.K / math.log(2))
    truth = math.log2(1 / 5)
    assert truth - 0.01 - 3 * se < mean <= truth + 3 * se, (mean, se)


def test_heartbeat_bayes_optimal_chain_samples_the_five_sequences() -> None:
    """Sampling from that chain (T = 200): its bound is near log2(1/5), so p(x_0) is near the data's law.
    Of 2,000 samples at least 99% are heartbeats (all of them here), each of the 5 phases within 4
    binomial SE of 1/5."""
    from thermodiff.sampling.ancestral import sample

    T, p_bar, n = 200, 0.2, 2000
    k = BinomialKernel(binomial_betas(T), p_bar, learned_first_step=True)
    x = sample(k, heartbeat_oracle(T, p_bar), (20,), n, torch.Generator().manual_seed(5))
    match = (x[:, None, :] == heartbeats()).all(-1)  # (n, 5)
    valid = match.any(1)
    assert valid.double().mean().item() > 0.99
    share = match[valid].double().mean(0)
    assert torch.all(abs(share - 0.2) < 4 * math.sqrt(0.16 / valid.sum().item())), share


def test_bernoulli_product_is_normalized_product() -> None:
    cs = [1e-6, 0.1, 0.5, 0.77, 0.999]
    ds = [1e-6, 0.2, 0.5, 0.9, 1 - 1e-9]
    c = torch.tensor([a for a in cs for _ in ds], dtype=torch.float64)
    d = torch.tensor([b for _ in cs for b in ds], dtype=torch.float64)
    got = torch.sigmoid(bernoulli_product(torch.log(c) - torch.log1p(-c), d)).tolist()
    for g, a, b in zip(got, c.tolist(), d.tolist(), strict=True):
        assert g == pytest.approx(a * b / (a * b + (1 - a) * (1 - b)), rel=1e-9, abs=EXACT)
    delta = bernoulli_product(torch.tensor([0.3, -2.0]), torch.tensor([1.0, 0.0]))
    assert delta.tolist() == [math.inf, -math.inf]  # r a delta on one value pins the bit


@pytest.mark.parametrize("first_step", ["fixed", "learned"])
def test_offset_parameterization_untrained_is_the_equilibrium_reversal(first_step: str) -> None:
    """diffusion.parameterization = "offset": a network whose readout is zero (as initialised) gives
    the equilibrium reversal's logits at every step, so K - L_null = 0 exactly in expectation (checked
    as above, all t, 3 SE); the paper's f_b = sigmoid(raw) gives a coin flip instead, which costs about
    log 2 per bit and step (K - L_null below -T/4 nats per bit here)."""
    from thermodiff.config import load_toml
    from thermodiff.model.assemble import build_model

    over = ["diffusion.T=50", f"diffusion.first_step={first_step}"]
    g = torch.Generator().manual_seed(4)
    x0 = (torch.rand(4000, 20, generator=g, dtype=torch.float64) < 0.2).double()
    gaps = {}
    for name in ("offset", "paper"):
        model = build_model(load_toml("heartbeat", [*over, f"diffusion.parameterization={name}"]), (20,), 0.2)
        kernel = model.kernel()
        x_t, t = x0[:64], torch.randint(1, 51, (64,), generator=g)
        logits = model.model_fn(kernel)(x_t, t).logit
        if name == "offset":
            assert torch.equal(logits, kernel.equilibrium_reversal(x_t, t).logit)
        with torch.no_grad():
            terms, _ = bound_exact(kernel, model.model_fn(kernel), x0, g)
        gaps[name] = mean_and_stderr(terms.K - terms.log_null)
    mean, se = gaps["offset"]
    assert abs(mean) <= 3 * se and abs(mean) < 0.1, (mean, se)
    assert gaps["paper"][0] < -50 / 4 * 20, gaps["paper"]
