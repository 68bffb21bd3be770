"""How much of the few-step loss is the respacing's own (issue 15, part a): the swiss roll's respaced
chains run with the exact E[x_0 | x_t] and Var[x_0 | x_t] (data/toy.py's quadrature) in place of a
network, so that what is left is the Gaussian reverse step's error on a big step, not the model's.
Variances: "small" (the respaced posterior variance beta~'), "large" (beta'), "moment" (beta~' +
c0'^2 Var[x_0 | x_t], the true reverse step's diagonal variance: the best a diagonal Gaussian step can
match), and DDIM (eta = 0) on the exact x_0. Each row: the samples' mean true log-density (bits).

    python bench/sampling_oracle.py [--samples 2000] [--steps 1000,250,100,50,25,10]

Writes bench/results/sampling_oracle.json (a table of its own; bench/sampling.py does not read it).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from benchio import write_json

from thermodiff import load_dataset, load_toml
from thermodiff.data.toy import swiss_roll_posterior_x0
from thermodiff.diffusion.bound import mean_and_stderr, to_bits
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.respace import Respacing
from thermodiff.diffusion.schedules import log_snr_betas
from thermodiff.diffusion.steps import GaussianStep, at
from thermodiff.sampling.ancestral import sample
from thermodiff.sampling.ddim import DDIMStep

VARIANCES = ("small", "large", "moment", "ddim")


def oracle_fn(kernel: GaussianKernel, sigma: float, shift: torch.Tensor, scale: float, variance: str):
    """(x_t, t) -> the Gaussian step whose mean is the posterior mean at the exact E[x_0 | x_t]."""

    def fn(x_t: torch.Tensor, t: torch.Tensor) -> GaussianStep:
        step = int(t[0])
        mean0, var0 = swiss_roll_posterior_x0(
            x_t, math.exp(float(kernel.log_alpha_bar[step])), sigma, shift, scale
        )
        c0, ct = kernel.posterior_coefficients(t, x_t)
        small = kernel.posterior_logvar(t, x_t).expand_as(x_t)
        logvar = {
            "small": small,
            "ddim": small,
            "large": torch.log(at(kernel.betas, t, x_t)).expand_as(x_t),
            "moment": torch.log(torch.exp(small) + c0**2 * var0),
        }[variance]
        return GaussianStep(c0 * mean0 + ct * x_t, logvar)

    return fn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--steps", default="1000,250,100,50,25,10")
    p.add_argument("--sigma", type=float, default=0.05)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_toml("swiss_roll", [f"data.sigma={args.sigma}", "data.n_train=50000", "data.n_test=10000"])
    ds = load_dataset(cfg.data)
    shift, scale = torch.tensor(ds.scaling.shift), ds.scaling.scale
    full = GaussianKernel(log_snr_betas(1000, 1e-4))
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        kernel = Respacing.of(1000, steps).kernel(full)
        for variance in VARIANCES:
            fn = oracle_fn(kernel, args.sigma, shift, scale, variance)
            rule = DDIMStep(kernel, 0.0) if variance == "ddim" else None
            t0 = time.process_time()
            x = sample(kernel, fn, (2,), args.samples, torch.Generator().manual_seed(0), rule=rule)
            logp = to_bits(ds.true_log_prob(x))
            lp, se = mean_and_stderr(logp)
            rows.append(
                {
                    "steps": steps,
                    "variance": variance,
                    "mean_true_logp_bits": lp,
                    "mean_true_logp_stderr_bits": se,
                    "median_true_logp_bits": float(logp.median()),
                    "cpu_seconds": round(time.process_time() - t0, 1),
                }
            )
            print(
                f"{steps:5d} {variance:>7} {lp:8.3f} ± {se:.3f}  median {float(logp.median()):7.3f}",
                flush=True,
            )
    truth, truth_se = mean_and_stderr(to_bits(ds.true_log_prob(ds.test[: args.samples])))
    base = {
        r["variance"]: r["mean_true_logp_bits"] for r in rows if r["steps"] == max(r["steps"] for r in rows)
    }
    for r in rows:
        r["logp_minus_full_chain_bits"] = r["mean_true_logp_bits"] - base[r["variance"]]
    write_json(
        Path(__file__).parent / "results" / "sampling_oracle.json",
        {
            "benchmark": "sampling_oracle",
            "what": f"swiss roll (sigma = {args.sigma:g}), T = 1000 log-SNR schedule, respaced chains run "
            "with the exact E[x_0|x_t], Var[x_0|x_t]: the respacing's own loss",
            "samples": args.samples,
            "held_out_true_logp_bits": truth,
            "held_out_true_logp_stderr_bits": truth_se,
            "rows": rows,
        },
    )
    assert math.isfinite(truth)


if __name__ == "__main__":
    main()
