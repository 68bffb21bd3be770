"""Binarized MNIST benchmark (issue: binomial diffusion): test NLL bound in nats per image, about 8
minutes on one GPU, beside the published autoregressive figures (van den Oord et al. 2016, Table 4).

Trains the bundled `binarized_mnist` config (binomial kernel, learned first step, U-Net), then evaluates
-K in nats per image on the 10,000 test images (uniform t per image, unbiased, with its standard error)
and, on a GPU, on the first 1,000 with every t (exact in t). Writes bench/results/binarized_mnist*.json
and a sample grid. Three budgets:
  gpu    (default with a GPU) the config as it is, trained for --seconds of wall clock (the step count is
         fixed first from a timed calibration run, so the learning-rate schedule completes); 8 t per image.
  cpu    a smaller U-Net (base 32, one block per level, no attention or dropout) for 3,000 steps at batch
         64: about 45 minutes of one core, then 8 t per image (about 11 minutes). binarized_mnist_cpu.json.
  quick  (the default without a GPU) a tiny model for a few CPU minutes: a smoke test of the pipeline,
         whose numbers are not results. binarized_mnist_quick.json.

    python bench/binarized_mnist.py [--device auto|cuda|cpu] [--budget gpu|cpu|quick] [--seconds S]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from benchio import write_json  # bench/ is on sys.path as a script
from images import budget_record, seconds_per_step

from thermodiff import load_dataset, load_run, load_toml, report, sample_grid, train

REFERENCES_NATS = {"MADE": 86.64, "PixelCNN": 81.30}  # van den Oord et al. 2016, Table 4
TARGET = "test NLL bound below 86.64 nats (MADE)"
KEEP = (
    "nll_nats nll_stderr_nats nll_bits_per_dim K_bits stderr_bits K_minus_Lnull_bits L_null_bits n_examples"
)
QUICK = [
    "diffusion.T=100",
    "data.n_train=2000",
    "train.batch=16",
    "train.warmup=20",
    "train.ema=0.95",
    "train.sample_every=0",
    "model.base=16",
    "model.mults=1,2",
    "model.num_res_blocks=1",
    "model.attn_resolutions=",
    "eval.n=200",
]
CPU = [
    "model.base=32",
    "model.num_res_blocks=1",
    "model.attn_resolutions=",
    "model.dropout=0",
    "train.batch=64",
    "train.lr=1e-3",
    "train.warmup=100",
    "train.ema=0.998",
    "train.precision=fp32",
]
# budget -> (overrides, fixed steps (None: from --seconds), t draws per test image, exact on 1,000, mode)
BUDGETS = {
    "gpu": ([], None, 8, True, "GPU budget"),
    "cpu": (CPU, 3000, 8, False, "CPU budget: one core, a smaller U-Net"),
    "quick": (QUICK, 150, 1, False, "QUICK CPU SMOKE TEST: tiny budget, not a result"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--budget", choices=sorted(BUDGETS), help="default: gpu with a GPU, else quick")
    p.add_argument("--quick", action="store_true", help="the same as --budget quick")
    p.add_argument("--seconds", type=float, default=380.0, help="GPU training budget")
    p.add_argument("--out", default="runs/bench_binarized_mnist")
    args = p.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    budget = "quick" if args.quick else args.budget or ("gpu" if device.startswith("cuda") else "quick")
    overrides, steps, draws, exact_1000, mode = BUDGETS[budget]
    out = Path(args.out)
    if steps is None:
        per_step = seconds_per_step("binarized_mnist", overrides, device, out / "calibration")
        steps = max(100, int(args.seconds / per_step))
    overrides = [*overrides, f"train.steps={steps}", f"train.ckpt_every={steps}", "train.sample_every=0"]
    run_dir = out / "model"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.time()
    train(load_toml("binarized_mnist", overrides), run_dir, device=device)
    train_s = time.time() - t0
    run = load_run(run_dir, device)
    cfg, model, step = run.config, run.model, run.step
    ds = load_dataset(cfg.data)
    name = "binarized_mnist" if budget == "gpu" else f"binarized_mnist_{budget}"
    path = Path(__file__).parent / "results" / f"{name}.json"
    result = {
        "benchmark": "binarized_mnist",
        "mode": mode,
        "units": "NLL bound -K in nats per 784-pixel image; bits/dim = nats / ln 2 / 784",
        "budget": budget_record(cfg, step, train_s, device),
        "references_nats": REFERENCES_NATS,
        "target": TARGET,
        "config": cfg.to_dict(),
    }
    t0 = time.time()
    r = report(model, ds, cfg.eval.n, False, cfg.eval.batch, device, draws=draws)
    result["uniform_t"] = {k: r[k] for k in [*KEEP.split(), "t_draws"]}
    write_json(path, result)  # after each stage: a cut run keeps the rest
    if exact_1000:  # every t on the first 1,000: no t-sampling noise in the figure
        r = report(model, ds, 1000, True, cfg.eval.batch, device)
        result["all_t_first_1000"] = {k: r[k] for k in KEEP.split()}
    result["eval_seconds"] = round(time.time() - t0, 1)
    write_json(path, result)
    result["samples"] = str(
        sample_grid(model, run.spec, run.scaling, out / "samples.png", n=64, device=device)
    )
    write_json(path, result)
    for stage in ("uniform_t", "all_t_first_1000"):
        if stage in result:
            v = result[stage]
            print(
                f"{stage:18} NLL {v['nll_nats']:8.2f} ± {v['nll_stderr_nats']:.2f} nats "
                f"({v['nll_bits_per_dim']:.4f} bits/dim, {v['n_examples']} test images)"
            )
    refs = ", ".join(f"{k} {v}" for k, v in REFERENCES_NATS.items())
    print(f"references: {refs} nats; {step} steps, {train_s:.0f} s training; {result['mode']}; wrote {path}")


if __name__ == "__main__":
    main()
