"""Image likelihood benchmark (issue: images): dead leaves (the paper's network and a U-Net), bark and
MNIST, about 9 minutes on one GPU.

Per data set: train the bundled config for a wall-clock budget (the step count is fixed before training
from a short timed calibration run, so the learning-rate schedule completes and the run is reproducible
from the recorded steps), then evaluate:
  - paper units: K and K - L_null in bits/pixel on dequantized, unit-variance data, with standard errors;
  - MNIST: the NLL bound in bits/dim on the 8-bit grid (first 1,000 test images) and the paper's
    Parzen-window estimate (10,000 samples, sigma chosen on validation images, all 10,000 test images).
The paper's figures are written beside ours. Writes bench/results/images.json (--quick: images_quick.json).

    python bench/images.py [--device auto|cuda|cpu] [--quick] [--seconds NAME=S ...] [--parzen-samples N]

--quick (the default without a GPU) trains tiny models for a few CPU minutes: a smoke test of the
pipeline, whose numbers are not results.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path

import torch
from benchio import write_json

from thermodiff import load_dataset, load_run, load_toml, parzen_report, report, train

# data sets: $THERMODIFF_DATA, or <repo>/../shared/data when it is unset (as in tests/conftest.py)
os.environ["THERMODIFF_DATA"] = os.environ.get("THERMODIFF_DATA") or str(
    Path(__file__).resolve().parents[2] / "shared" / "data"
)

PAPER = {  # P Tables 1-2
    "dead_leaves": {
        "K_bits": 1.489,
        "K_minus_Lnull_bits": 3.536,
        "unit": "bits/pixel",
        "note": "paper: Theis et al. (2012)'s dead-leaves images; ours come from data/textures.py "
        "(generator parameters of the paper's data are not published): same units, different images",
    },
    "dead_leaves_unet": {
        "K_bits": 1.489,
        "K_minus_Lnull_bits": 3.536,
        "unit": "bits/pixel",
        "note": "as dead_leaves (same data and units), with a DDPM-style U-Net for the paper's network",
    },
    "bark": {
        "K_bits": -0.55,
        "K_minus_Lnull_bits": 1.5,
        "unit": "bits/pixel",
        "note": "DIFFERENT DATA, same units: the paper used UIUC textures T01-T04 (Lazebnik et al. 2005); "
        "we use patches of Brodatz D12 (bark of tree), which is all shared/data holds",
    },
    "mnist": {
        "parzen_bits": 317.0,
        "parzen_stderr_bits": 2.7,
        "unit": "bits/image (Parzen)",
        "note": "paper: Parzen estimate only (no K for MNIST); the bits/dim target comes from the issue",
    },
}
TARGETS = {
    "dead_leaves": "K - L_null >= 3.536 bits/pixel",
    "dead_leaves_unet": "K - L_null >= 3.536 bits/pixel",
    "bark": "K - L_null >= 1.5 bits/pixel",
    "mnist": "nll_bits_per_dim < 1.35 after <= 5 min of H200 training; Parzen >= 317 bits",
}
# name -> (config, overrides, GPU training seconds)
GPU = {
    "dead_leaves": ("dead_leaves", ["data.n_train=10000", "data.n_test=500", "eval.n=500"], 40),
    "dead_leaves_unet": ("dead_leaves_unet", ["data.n_train=10000", "data.n_test=500", "eval.n=500"], 40),
    "bark": ("bark", ["data.n_test=500", "eval.n=500"], 50),
    "mnist": ("mnist_unet", [], 240),
}
# quick: all t on 20 test images for the paper net (a smaller standard error than one random t per
# example on hundreds); one t per example on 100 for the U-Net
_TINY = ["train.batch=16", "data.n_test=200", "eval.n=20", "eval.exact=true", "train.sample_every=0"]
_TINY += ["train.ema=0.95"]  # a few hundred steps: a slower average would keep the initial weights
QUICK = {  # name -> (config, overrides, fixed steps): CPU minutes
    "dead_leaves": (
        "dead_leaves",
        [*_TINY, "data.image_size=16", "data.n_train=1000", "model.conv_channels=16"],
        300,
    ),
    "dead_leaves_unet": (
        "dead_leaves_unet",
        [*_TINY, "data.image_size=16", "data.n_train=1000", "model.base=16", "model.mults=1,2"]
        + ["model.num_res_blocks=1", "model.attn_resolutions=", "eval.n=100", "eval.exact=false"],
        150,
    ),
    "bark": ("bark", [*_TINY, "data.image_size=16", "data.n_train=2000", "model.conv_channels=16"], 300),
    "mnist": (
        "mnist_unet",
        [*_TINY, "diffusion.T=100", "model.base=16", "model.mults=1,2", "model.num_res_blocks=1"]
        + ["eval.n=100", "eval.exact=false"]
        + ["model.attn_resolutions=", "data.n_test=1000", "train.warmup=20"],
        150,
    ),
}
KEEP = (
    "K_bits stderr_bits K_minus_Lnull_bits K_minus_Lnull_stderr_bits L_null_bits unit n_examples t_draws "
    "T nll_bits_per_dim nll_stderr_bits_per_dim dequantized_nll_bits_per_dim "
    "dequantized_nll_stderr_bits_per_dim"
).split()


_DATASETS: dict = {}


def dataset(cfg_data):
    """train() (through its dataset seam) and the evaluation use the same data set: generated once
    (dead leaves take seconds)."""
    if cfg_data not in _DATASETS:
        _DATASETS[cfg_data] = load_dataset(cfg_data)
    return _DATASETS[cfg_data]


def seconds_per_step(config: str, overrides: list[str], device: str, out: Path) -> float:
    """Wall seconds per training step, timed over steps 10..40 of a throw-away run."""
    logs: list[float] = []
    calib = [
        *overrides,
        "train.steps=40",
        "train.log_every=10",
        "train.ckpt_every=1000",
        "train.sample_every=0",
    ]
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_toml(config, calib)
    train(cfg, out, device=device, on_log=lambda r: logs.append(r["seconds"]), dataset=dataset(cfg.data))
    shutil.rmtree(out, ignore_errors=True)
    return (logs[-1] - logs[0]) / 30


def budget_record(cfg, step: int, train_s: float, device: str) -> dict:
    """What a figure cost: steps, batch, training seconds, the device and precision."""
    return {
        "steps": step,
        "batch": cfg.train.batch,
        "train_seconds": round(train_s, 1),
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "torch_threads": torch.get_num_threads(),
        "precision": cfg.train.precision,
    }


def run_one(name: str, quick: bool, device: str, out: Path, seconds: float) -> dict:
    config, overrides, budget = (QUICK if quick else GPU)[name]
    steps = budget
    if not quick:
        per_step = seconds_per_step(config, overrides, device, out / f"{name}_calibration")
        steps = max(100, int(seconds / per_step))
        ema = min(load_toml(config, overrides).train.ema, 1 - 10 / steps)  # average over >= 10% of the run
        overrides = [*overrides, f"train.ema={ema}"]
    last = [f"train.steps={steps}", f"train.ckpt_every={steps}", "train.sample_every=0"]  # timed: no grids
    cfg = load_toml(config, [*overrides, *last])
    run_dir = out / name
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.time()
    train(cfg, run_dir, device=device, dataset=dataset(cfg.data))
    train_s = time.time() - t0
    run = load_run(run_dir, device)
    cfg, model, step = run.config, run.model, run.step
    ds = dataset(cfg.data)
    t0 = time.time()
    draws = 1 if quick or cfg.eval.exact else 8  # one-t configs (the U-Net): 8 t per image, averaged
    r = report(model, ds, cfg.eval.n, cfg.eval.exact, cfg.eval.batch, device, draws=draws)
    row = {k: r[k] for k in KEEP if k in r}
    row["eval_seconds"] = round(time.time() - t0, 1)
    row["budget"] = budget_record(cfg, step, train_s, device)
    row["config"] = cfg.to_dict()
    row["paper"] = PAPER[name]
    row["target"] = TARGETS[name]
    return row


def parzen(run_dir: Path, device: str, n_samples: int) -> dict:
    """The paper's Parzen-window estimate (P 3.3) of a trained MNIST run."""
    t0 = time.time()
    run = load_run(run_dir, device)
    cfg, model = run.config, run.model
    if device.startswith("cuda"):  # samples only: sigma >= 0.1 = 25 grey levels, bf16 is plenty
        model.fast.precision = "bf16"
    row = parzen_report(model, dataset(cfg.data), n_samples, device=device)
    return {**row, "parzen_seconds": round(time.time() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="tiny CPU-sized runs (a smoke test)")
    p.add_argument("--seconds", action="append", default=[], metavar="NAME=S", help="GPU training budget")
    p.add_argument("--parzen-samples", type=int, default=None, help="default 10000 (--quick: 50)")
    p.add_argument("--only", nargs="*", default=list(GPU), choices=list(GPU))
    p.add_argument("--out", default="runs/bench_images")
    args = p.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    quick = args.quick or not device.startswith("cuda")
    seconds = {k: v[2] for k, v in GPU.items()} | {
        k: float(v) for k, v in (s.split("=", 1) for s in args.seconds)
    }
    parzen_samples = args.parzen_samples or (50 if quick else 10_000)
    t_start = time.time()
    path = Path(__file__).parent / "results" / ("images_quick.json" if quick else "images.json")
    rows: dict = {}
    result = {
        "benchmark": "images",
        "mode": "QUICK CPU SMOKE TEST: tiny budgets, not results" if quick else "GPU budget",
        "units": "K, K - L_null: bits/pixel on data dequantized by one grey level and scaled to unit "
        "variance (paper units); nll_bits_per_dim: NLL bound on the 8-bit grid through a discretized "
        "Gaussian last step (Ho et al. 2020); parzen: nats and bits per image, [0, 1] pixels",
        "runs": rows,
    }
    for name in args.only:  # the JSON is rewritten after each data set: a run cut short keeps the rest
        rows[name] = run_one(name, quick, device, Path(args.out), seconds[name])
        result["total_seconds"] = round(time.time() - t_start, 1)
        write_json(path, result)
    if "mnist" in rows:  # last: 10,000 samples of T steps, the slowest part
        rows["mnist"].update(parzen(Path(args.out) / "mnist", device, parzen_samples))
        result["total_seconds"] = round(time.time() - t_start, 1)
        write_json(path, result)
    print(
        f"{'data':16} {'K':>16} {'K - L_null':>16} {'paper':>15} {'bits/dim':>16} {'steps':>6} {'train s':>7}"
    )
    for name, r in rows.items():
        ref = PAPER[name]
        paper = f"{ref['K_bits']} / {ref['K_minus_Lnull_bits']}" if "K_bits" in ref else ""
        print(
            f"{name:16} {r['K_bits']:8.3f} ± {r['stderr_bits']:.3f} {r['K_minus_Lnull_bits']:8.3f} ± "
            f"{r['K_minus_Lnull_stderr_bits']:.3f} {paper:>15} {r['nll_bits_per_dim']:8.3f} ± "
            f"{r['nll_stderr_bits_per_dim']:.3f} {r['budget']['steps']:6d} "
            f"{r['budget']['train_seconds']:7.1f}"
        )
        if "parzen_bits" in r:
            print(
                f"{'':16} Parzen {r['parzen_bits']:.1f} ± {r['parzen_stderr_bits']:.1f} bits "
                "(paper 317 ± 2.7)"
            )
    print(f"{result['mode']}; {result['total_seconds']:.0f} s in all; wrote {path}")
    if not math.isfinite(sum(r["K_bits"] for r in rows.values())):
        raise SystemExit("a bound is not finite")


if __name__ == "__main__":
    main()
