"""Sampling quality against the number of steps (issue 15, part a): a swiss roll trained with T = 1,000
(eps parameterization, learned-range variances, the log-SNR schedule: alpha_bar_T = 1e-4) sampled on
respaced chains of 1,000, 250, 100, 50, 25 and 10 steps: ancestrally with the learned-range variances,
with the same network's mean and the respaced chain's posterior variance ("small"), and by DDIM
(eta = 0). For each: the mean true log-density of the samples (the roll's density is known), the energy
distance to held-out data, K of the respaced chain on held-out data with its paired difference to the
full chain's K, and the CPU time per sample as a ratio to the full chain's (measured in the same run).
Writes bench/results/sampling.json and sampling.png.

    python bench/sampling.py [--train-steps 12000] [--samples 5000] [--eval-n 1000] [--out RUN]

CPU-sized: a thicker tube (sigma = 0.05 instead of the paper's 0.002) and an MLP on Fourier features of
x (as configs/swiss_roll_quick.toml), about 6 CPU-minutes of training on one thread. sampling_oracle.py
runs the same chains with the exact E[x_0 | x_t] in place of the network: the respacing's own loss.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from benchio import write_json

from thermodiff import load_dataset, load_run, load_toml, sample, train
from thermodiff.diffusion.bound import mean_and_stderr, to_bits
from thermodiff.diffusion.reverse import EpsReverse
from thermodiff.evaluation.estimate import evaluate_bound
from thermodiff.sampling.chain import chain_of

STEP_COUNTS = (1000, 250, 100, 50, 25, 10)
SAMPLERS = ("ancestral", "ancestral_small", "ddim")  # "ancestral_large" works too
CONFIG = [
    "diffusion.T=1000",
    "diffusion.schedule=log_snr",
    "diffusion.beta_1=1e-4",
    "diffusion.variance=learned_range",
    "data.sigma=0.05",
    "data.n_train=50000",
    "data.n_test=10000",
    "model.hidden=256",
    "model.layers=4",
    "model.fourier=64",
    "model.fourier_scale=1.0",
    "train.batch=512",
    "train.lr=2e-3",
    "train.ema=0.999",
    "train.log_every=500",
    "train.ckpt_every=4000",
]
# When may K of a respaced chain exceed the full chain's? With x_0 predicted by one shared network and the
# posterior ("small") variances, the chain on a subsequence of the steps has the larger diffusion loss
# whenever the network's error in x_0 does not grow as the noise shrinks (VDM, Kingma et al. 2021, App.
# "doubling the number of steps"): there K_respaced <= K_full. Learned-range variances (interpolated
# against the respaced beta and beta~), or a network worse at low noise than at high noise, are outside
# that argument: there a respaced K above the full chain's is possible, and is flagged per row.
K_THEORY = (
    "K_respaced <= K_full holds for a shared x_0-predictor with posterior variances whose error does not "
    "grow as noise shrinks (VDM App., doubling T); learned-range variances (this model) and a predictor "
    "worse at low noise fall outside it, so a respaced K above the full chain's is possible there: "
    "K_above_full_beyond_stderr flags it per row"
)


def with_variance(model, variance: str):
    """The same network's eps with the fixed variance `variance` (small | large) in place of its
    learned range: a learned-range reverse whose variance choice is swapped (its eps is channel 0)."""
    reverse = EpsReverse("learned_range")
    reverse.variance = variance
    return dataclasses.replace(model, reverse=reverse)


def energy_distance(x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo) in model space, unbiased: X' is another
    example than X (a sample's n zero self-distances would add about (E|X - X'| + E|Y - Y'|) / n)."""

    def mean_dist(a: torch.Tensor, b: torch.Tensor, pairs: int) -> float:
        total = sum(float(torch.cdist(a[i : i + chunk], b).sum()) for i in range(0, a.shape[0], chunk))
        return total / pairs

    n, m = x.shape[0], y.shape[0]
    return 2 * mean_dist(x, y, n * m) - mean_dist(x, x, n * (n - 1)) - mean_dist(y, y, m * (m - 1))


def measure(run, ds, steps: int, sampler: str, n: int, device: str, held: torch.Tensor) -> dict:
    model = model_of(run, sampler)
    chain = chain_of(model, None if steps == model.schedule.T else steps, sampler.split("_")[0])
    gen = torch.Generator(device).manual_seed(0)
    t0 = time.process_time()
    x = sample(chain.kernel, chain.model_fn, ds.spec.shape, n, gen, device, rule=chain.rule)
    seconds = time.process_time() - t0
    x = x.cpu()
    logp = to_bits(ds.true_log_prob(x))
    finite = torch.isfinite(logp)
    lp, lp_se = mean_and_stderr(logp[finite])
    return {
        "steps": steps,
        "sampler": sampler,
        "mean_true_logp_bits": lp,
        "mean_true_logp_stderr_bits": lp_se,
        "median_true_logp_bits": float(logp.median()),
        "nonfinite_logp": int((~finite).sum()),
        "energy_distance": energy_distance(x, held),
        "cpu_seconds_per_sample": seconds / n,
    }


def bound(model, x: torch.Tensor, steps: int | None, device: str, full_K: torch.Tensor | None) -> dict:
    terms, _ = evaluate_bound(model, x, True, 2000, device=device, steps=steps)
    K, K_se = mean_and_stderr(to_bits(terms.K))
    out = {"K_bits": K, "K_stderr_bits": K_se}
    if full_K is not None:
        d, d_se = mean_and_stderr(to_bits(terms.K - full_K))
        out.update(minus_full_K_bits=d, minus_full_K_stderr_bits=d_se)
    return out, terms.K


def model_of(run, sampler: str):
    """The model a sampler's chain is: DDIM's K is not its own (a non-Markovian sampler of the same
    marginals): its rows carry the learned-range ancestral chain's."""
    return with_variance(run.model, sampler.split("_")[1]) if "_" in sampler else run.model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-steps", type=int, default=12000)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/bench_sampling")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_toml("swiss_roll", [*CONFIG, f"train.steps={args.train_steps}"])
    run_dir = Path(args.out)
    t0 = time.time()
    if not (run_dir / "checkpoints" / "LATEST").exists():
        train(cfg, run_dir, device=args.device)
    train_s = time.time() - t0  # wall time, 0 when the run was there already
    run = load_run(run_dir, args.device)
    ds = load_dataset(run.config.data)
    held = ds.test[: args.samples].to(torch.float64)
    x_eval = ds.test[: args.eval_n]
    truth, truth_se = mean_and_stderr(to_bits(ds.true_log_prob(held)))
    full = {s: bound(model_of(run, s), x_eval, None, args.device, None) for s in SAMPLERS[:-1]}
    full["ddim"] = full["ancestral"]
    rows = []
    for steps in STEP_COUNTS:
        b = {s: full[s][0] for s in SAMPLERS}
        if steps != 1000:
            b = {s: bound(model_of(run, s), x_eval, steps, args.device, full[s][1])[0] for s in SAMPLERS[:-1]}
            b["ddim"] = b["ancestral"]
        for sampler in SAMPLERS:
            row = measure(run, ds, steps, sampler, args.samples, args.device, held)
            rows.append({**row, **b[sampler]})
    base = {r["sampler"]: r for r in rows if r["steps"] == 1000}
    for r in rows:
        ref = base[r["sampler"]]
        r["logp_minus_full_chain_bits"] = r["mean_true_logp_bits"] - ref["mean_true_logp_bits"]
        r["time_ratio_to_full_chain"] = r["cpu_seconds_per_sample"] / ref["cpu_seconds_per_sample"]
        if "minus_full_K_bits" in r:
            r["K_above_full_beyond_stderr"] = r["minus_full_K_bits"] > r["minus_full_K_stderr_bits"]
    result = {
        "benchmark": "sampling",
        "what": "swiss roll, T = 1000, respaced chains; K on held-out data, samples' true log-density",
        "config_overrides": [*CONFIG, f"train.steps={args.train_steps}"],
        "train_seconds": round(train_s, 1),
        "samples": args.samples,
        "eval_n": args.eval_n,
        "held_out_true_logp_bits": truth,
        "held_out_true_logp_stderr_bits": truth_se,
        "torch_threads": torch.get_num_threads(),
        "train_step": run.step,
        "targets": {"logp_minus_full_at_50": "> -0.1 bits", "logp_minus_full_at_25": "> -0.3 bits"},
        "K_theory": K_THEORY,
        "rows": rows,
    }
    out = Path(__file__).parent / "results" / "sampling.json"
    write_json(out, result)
    print(f"held-out data: mean true log p = {truth:.3f} ± {truth_se:.3f} bits; trained {train_s:.0f} s")
    print(f"{'steps':>5} {'sampler':>15} {'log p (bits)':>16} {'- full':>7} {'energy d':>9} "
          f"{'K (bits)':>16} {'K - full K':>16} {'time ratio':>10}")  # fmt: skip
    for r in rows:
        dk = (
            f"{r['minus_full_K_bits']:7.3f} ± {r['minus_full_K_stderr_bits']:.3f}"
            if "minus_full_K_bits" in r
            else ""
        )
        print(
            f"{r['steps']:>5} {r['sampler']:>15} {r['mean_true_logp_bits']:8.3f} ± "
            f"{r['mean_true_logp_stderr_bits']:.3f} {r['logp_minus_full_chain_bits']:7.3f} "
            f"{r['energy_distance']:9.5f} {r['K_bits']:8.3f} ± "
            f"{r['K_stderr_bits']:.3f} {dk:>16} {r['time_ratio_to_full_chain']:10.3f}"
        )
    plot(rows, Path(__file__).parent / "results" / "sampling.png")
    print(f"wrote {out}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for sampler, style in zip(SAMPLERS, ("o-", "v:", "s--"), strict=True):
        rs = [r for r in rows if r["sampler"] == sampler]
        steps = [r["steps"] for r in rs]
        axes[0].plot(steps, [r["mean_true_logp_bits"] for r in rs], style, label=sampler)
        axes[1].plot(steps, [r["energy_distance"] for r in rs], style, label=sampler)
    rs = [r for r in rows if r["sampler"] == "ancestral"]
    axes[2].errorbar(
        [r["steps"] for r in rs], [r["K_bits"] for r in rs], [r["K_stderr_bits"] for r in rs], fmt="o-"
    )
    titles = ("samples' mean true log p (bits)", "energy distance to held-out data", "K of the chain (bits)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("steps sampled (of T = 1000)")
        ax.set_title(title, fontsize=10)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
