"""Conditioning benchmark (issue: multiplying distributions; P 2.5, Figs. 4-5; ADM Alg. 1) on MNIST test
images. Trains (or reuses) a diffusion model, a noisy classifier p(y | x_t, t) on its forward kernel and
an independent clean classifier (the judge), then measures:
  denoising at SNR 1 (noise std = data std = 1 in model space): PSNR of the result against the clean
    image, beside the noisy input's and a Gaussian-blur baseline's (blur sigma chosen on held-out images);
  inpainting of the left half: MSE on the hole beside a mean-fill baseline (training mean image), and
    whether the known pixels come back bit-exact;
  classifier guidance: the judge's accuracy on guided samples, per asked class, at a few scales s.
Writes bench/results/conditioning.json and prints a table. PSNR and MSE are on pixels in [0, 1]
(data / 255, clamped to [0, 1]); PSNR is the mean over images of 10 log10(1 / MSE).

    python bench/conditioning.py [--budget cpu|gpu] [--model-run DIR] [--classifier-run DIR]
                                 [--judge-run DIR] [--device cpu|cuda] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from benchio import write_json
from torch.nn import functional as F

from thermodiff import (
    ClassifierGuidance,
    Config,
    accuracy,
    condition_panel,
    data_box,
    denoise,
    inpaint,
    load_classifier,
    load_dataset,
    load_run,
    load_toml,
    sample,
    train,
    with_overrides,
)

# data sets: $THERMODIFF_DATA, or <repo>/../shared/data when it is unset (as in tests/conftest.py)
os.environ["THERMODIFF_DATA"] = os.environ.get("THERMODIFF_DATA") or str(
    Path(__file__).resolve().parents[2] / "shared" / "data"
)

UNET = {
    "net": "unet",
    "base": 16,
    "mults": "1,2,2",
    "num_res_blocks": 1,
    "attn_resolutions": "",
    "dropout": 0.0,
}
# cpu: about 30 minutes of training on one core, a shrunken mnist_unet (T = 100; log_snr schedule, so
# that training on -K weighs the eps error equally at every t). gpu: the bundled mnist_unet config.
BUDGETS = {
    "cpu": {
        "config": None,
        "diffusion": {"T": 100, "schedule": "log_snr", "beta_1": 1e-3, "parameterization": "eps"},
        "model": UNET,
        "train": {"steps": 9000, "batch": 32, "lr": 2e-3, "lr_final": 1e-4, "warmup": 100, "ema": 0.999},
        "classifier": {"steps": 1500, "batch": 64, "lr": 3e-3, "lr_final": 1e-4, "warmup": 50, "ema": 0.99},
        "judge": {"steps": 600, "batch": 64, "lr": 3e-3, "warmup": 20, "ema": 0.95},
        "n_eval": 50,
        "n_val": 20,
        "per_class": 10,
        "scales": [0.0, 1.0, 3.0, 10.0, 30.0],
        "k_mean": 4,
    },
    "gpu": {
        "config": "mnist_unet",
        "train": {"steps": 6000},
        "classifier": {"steps": 3000, "batch": 256, "lr": 1e-3, "warmup": 200, "ema": 0.999},
        "judge": {"steps": 2000, "batch": 256, "lr": 1e-3, "warmup": 200, "ema": 0.999},
        "n_eval": 500,
        "n_val": 100,
        "per_class": 50,
        "scales": [0.0, 1.0, 3.0, 10.0, 30.0],
        "k_mean": 8,
    },
}
CLASSIFIER_NET = {"base": 16, "mults": "1,2,2", "num_res_blocks": 1}


def config(d: dict) -> Config:
    """A Config from nested dicts over the defaults, typed and validated as the CLI's --set."""
    return with_overrides(
        Config(), [f"{section}.{k}={v}" for section, values in d.items() for k, v in values.items()]
    )


def _train(cfg, run: Path, device: str) -> float:
    """Train (or finish) a run; seconds spent."""
    t0 = time.time()
    train(cfg, run, device=device, resume=(run / "checkpoints" / "LATEST").exists())
    return round(time.time() - t0, 1)


def _logged_seconds(run: Path) -> float | None:
    """A reused run's training time: the `seconds` of its last metrics.jsonl record."""
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
    return json.loads(lines[-1]).get("seconds") if lines else None


def prepare(args, b: dict, out: Path, device: str) -> tuple[dict, dict]:
    """Run directories for the model, the noisy classifier and the judge (trained unless given)."""
    runs, seconds = {}, {}
    data = {"name": "mnist", "n_train": 10000, "n_test": 10000}
    if args.model_run:
        runs["model"] = Path(args.model_run)
        seconds["model"] = _logged_seconds(runs["model"])
    elif args.config or b["config"]:
        cfg = load_toml(args.config or b["config"], [f"train.steps={b['train']['steps']}"])
        runs["model"] = out / "model"
        seconds["model"] = _train(cfg, runs["model"], device)
    else:
        cfg = config({"data": data, "diffusion": b["diffusion"], "model": b["model"], "train": b["train"]})
        runs["model"] = out / "model"
        seconds["model"] = _train(cfg, runs["model"], device)
    for name, task in (("classifier", "classifier"), ("judge", "clean_classifier")):
        given = getattr(args, f"{name}_run")
        if given:
            runs[name] = Path(given)
            seconds[name] = _logged_seconds(runs[name])
            continue
        d = {
            "data": data,
            "diffusion": {"from_run": str(runs["model"])},
            "model": CLASSIFIER_NET,
            "train": {**b[name], "task": task, "seed": 1 if name == "judge" else 0},
        }
        runs[name] = out / name
        seconds[name] = _train(config(d), runs[name], device)
    return runs, seconds


def pixels(x: torch.Tensor, units) -> torch.Tensor:
    """Model space -> pixels in [0, 1] (data / 255, clamped)."""
    return units.model_to_pixels(x.cpu())


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE), pixels in [0, 1]."""
    mse = (x - ref).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(1 / mse)).mean())


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (N, C, H, W) with reflect padding, via conv2d."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.device)
    C = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.reshape(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(
        F.pad(x, (0, 0, r, r), mode="reflect"), k.reshape(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C
    )


def bench_denoise(model, x, val, units, k_mean, gen, figs: Path) -> dict:
    """SNR 1: y = x + N(0, 1) in model space (data scaled to unit variance), as in the paper. One
    posterior sample per image, and the mean of k samples (an estimate of the posterior mean, the
    minimum-MSE denoiser; one sample has about twice its MSE)."""
    clean, val_clean = pixels(x, units), pixels(val, units)
    y = x + torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    y_val = val + torch.randn(val.shape, generator=gen, device=x.device, dtype=x.dtype)
    noisy, noisy_val = pixels(y, units), pixels(y_val, units)
    sigmas = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
    best = max(sigmas, key=lambda s: psnr(blur(noisy_val, s).clamp(0, 1), val_clean))
    blurred = blur(noisy, best).clamp(0, 1)
    t0 = time.time()
    box = data_box(model, units)
    one = pixels(denoise(model, y, 1.0, gen, box), units)
    many = pixels(denoise(model, y.repeat(k_mean, 1, 1, 1), 1.0, gen, box), units)
    mean = many.reshape(k_mean, *x.shape).mean(0)
    cols = [("clean", clean), ("noisy (SNR 1)", noisy), (f"blur {best}", blurred), ("denoised", one)]
    condition_panel([*cols, (f"mean of {k_mean}", mean)], figs / "denoise_panel.png")
    r = {
        "noise_std_model_units": 1.0,
        "noise_std_grey_levels": 1.0 / units.scaling.scale,
        "psnr_noisy_db": psnr(noisy, clean),
        "psnr_blur_db": psnr(blurred, clean),
        "blur_sigma_pixels": best,
        "psnr_denoised_db": psnr(one, clean),
        f"psnr_denoised_mean_of_{k_mean}_db": psnr(mean, clean),
        "seconds": round(time.time() - t0, 1),
    }
    r["denoised_minus_blur_db"] = r["psnr_denoised_db"] - r["psnr_blur_db"]
    r[f"mean_of_{k_mean}_minus_blur_db"] = r[f"psnr_denoised_mean_of_{k_mean}_db"] - r["psnr_blur_db"]
    return r


def bench_inpaint(model, x, units, k_mean, gen, figs: Path) -> dict:
    """The left half unknown (the paper's task, mirrored): MSE on the hole vs the training mean image,
    for one sample and for the mean of k (mean fill is the prior mean; compare it with the posterior's)."""
    W = x.shape[-1]
    known = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    known[..., W // 2 :] = True
    t0 = time.time()
    box = data_box(model, units)
    xs, knowns = x.repeat(k_mean, 1, 1, 1), known.repeat(k_mean, 1, 1, 1)
    results = inpaint(model, xs, knowns, gen, box)
    result = results[: x.shape[0]]
    exact = bool(torch.equal(results[knowns], xs[knowns]))  # model space, where the sampler pins them
    clean, out = pixels(x, units), pixels(result, units)
    each = pixels(results, units).reshape(k_mean, *x.shape)
    mean_out = each.mean(0)
    # spread of the k samples on the hole: an estimate of the posterior variance v. An exact posterior
    # sample has MSE 2v, the exact posterior mean v, mean fill the prior variance: one sample beats mean
    # fill only where the known half explains more than half of the hole's variance.
    post_var = float(each.var(0, unbiased=True)[~known.cpu()].mean())
    mean_img = pixels(torch.zeros_like(x[:1]), units).expand_as(clean)  # shift = training mean
    hole = ~known.cpu()
    filled = torch.where(hole, mean_img, clean)
    cols = [
        ("clean", clean),
        ("known", torch.where(hole, 0.5, clean)),
        ("mean fill", filled),
        ("inpainted", out),
        (f"mean of {k_mean}", mean_out),
    ]
    condition_panel(cols, figs / "inpaint_panel.png")
    mse, base = float((out - clean)[hole].pow(2).mean()), float((filled - clean)[hole].pow(2).mean())
    return {
        "hole": "left half (columns < W/2)",
        "schedule": "forward: known pixels follow q(x_t | x_0) (condition.Mask)",
        "mse_hole_inpainted": mse,
        f"mse_hole_mean_of_{k_mean}": float((mean_out - clean)[hole].pow(2).mean()),
        "mse_hole_mean_fill": base,
        "posterior_variance_hole_estimate": post_var,
        "note": "an exact posterior sample has MSE = 2 x posterior variance, the posterior mean 1 x",
        "known_pixels_bit_exact": exact,
        "seconds": round(time.time() - t0, 1),
    }


def bench_guidance(model, clf, judge, per_class, scales, units, device, figs: Path) -> dict:
    """Judge accuracy on samples guided toward each class: mean + s Sigma grad log p(y | x_t, t)."""
    clf.check_matches(model.kernel().betas.detach(), units.scaling)
    n_classes = clf.n_classes
    labels = torch.arange(n_classes, device=device).repeat_interleave(per_class)
    kernel, rows = model.kernel(), []
    for s in scales:
        t0 = time.time()
        gen = torch.Generator(device).manual_seed(7)
        mults = [*data_box(model, units), ClassifierGuidance(lambda x, t: clf(x, t, labels), s)]
        x = sample(kernel, model.model_fn(kernel), units.spec.shape, labels.numel(), gen, device, mults)
        pred = judge.logits(x, torch.zeros_like(labels)).argmax(1)
        hit = (pred == labels).float().reshape(n_classes, per_class).mean(1)
        rows.append({"scale": s, "accuracy": float(hit.mean()), "per_class": hit.tolist(),
                     "seconds": round(time.time() - t0, 1)})  # fmt: skip
        grid = pixels(x, units).reshape(n_classes, per_class, *units.spec.shape)[:, : min(per_class, 8)]
        condition_panel([(str(c), grid[c]) for c in range(n_classes)], figs / f"guided_s{s:g}.png")
    return {"per_class_samples": per_class, "scales": rows, "best_accuracy": max(r["accuracy"] for r in rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", choices=list(BUDGETS), help="default: gpu if CUDA is available, else cpu")
    p.add_argument("--config", help="a bundled/path diffusion config to train instead of the budget's U-Net")
    p.add_argument("--model-run", help="reuse a trained MNIST diffusion run")
    p.add_argument("--classifier-run", help="reuse a noisy classifier run (trained on --model-run)")
    p.add_argument("--judge-run", help="reuse a clean classifier run")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="runs/bench_conditioning")
    args = p.parse_args()
    budget = args.budget or ("gpu" if args.device.startswith("cuda") else "cpu")
    b, out, device, t_start = BUDGETS[budget], Path(args.out), args.device, time.time()
    runs, train_seconds = prepare(args, b, out, device)
    run = load_run(runs["model"], device)
    cfg, model, units = run.config, run.model, run.units
    ds = load_dataset(cfg.data)
    test = units.to_model(ds.units.to_data(ds.test)).to(device)  # in the model's own scaling
    x, val = test[: b["n_eval"]], test[-b["n_val"] :]
    clf, judge = load_classifier(runs["classifier"], device), load_classifier(runs["judge"], device)
    figs = out / "figures"
    gen = torch.Generator(device).manual_seed(0)
    sanity_x, sanity_y = test[:1000], ds.labels_test[:1000]
    noisy_acc = {}
    for t in (0, model.kernel().T // 4, model.kernel().T // 2, 3 * model.kernel().T // 4):
        steps = torch.full((sanity_x.shape[0],), t, device=device)
        x_t = model.kernel().q_sample(sanity_x, steps, torch.randn_like(sanity_x))
        noisy_acc[str(t)] = accuracy(clf, x_t, sanity_y, t)
    result = {
        "benchmark": "conditioning",
        "budget": budget,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "runs": {k: str(v) for k, v in runs.items()},
        "train_seconds": train_seconds,
        "model_steps": run.step,
        "model_config": cfg.to_dict(),
        "judge_test_accuracy": accuracy(judge, sanity_x, sanity_y),
        "noisy_classifier_test_accuracy_by_t": noisy_acc,
        "n_eval_images": x.shape[0],
        "denoise": bench_denoise(model, x, val, units, b["k_mean"], gen, figs),
        "inpaint": bench_inpaint(model, x, units, b["k_mean"], gen, figs),
        "guidance": bench_guidance(model, clf, judge, b["per_class"], b["scales"], units, device, figs),
        "targets": {
            "denoised_minus_blur_db": ">= 3",
            "guided_accuracy_some_scale": ">= 0.9",
            "inpaint": "known pixels bit-exact and MSE on the hole below mean fill",
        },
    }
    dn, ip, gd = result["denoise"], result["inpaint"], result["guidance"]
    k = b["k_mean"]
    result["targets_met"] = {  # one posterior sample per image, and the mean of k samples
        "denoise_one_sample": dn["denoised_minus_blur_db"] >= 3,
        f"denoise_mean_of_{k}": dn[f"mean_of_{k}_minus_blur_db"] >= 3,
        "guidance": gd["best_accuracy"] >= 0.9,
        "inpaint_one_sample": ip["known_pixels_bit_exact"]
        and ip["mse_hole_inpainted"] < ip["mse_hole_mean_fill"],
        f"inpaint_mean_of_{k}": ip["known_pixels_bit_exact"]
        and ip[f"mse_hole_mean_of_{k}"] < ip["mse_hole_mean_fill"],
    }
    result["total_seconds"] = round(time.time() - t_start, 1)
    path = Path(__file__).parent / "results" / "conditioning.json"
    write_json(path, result)
    print(f"budget {budget} on {device}: model {run.step} steps; train seconds {train_seconds}")
    print(f"judge accuracy on test images {result['judge_test_accuracy']:.3f}; noisy clf by t {noisy_acc}")
    print(f"denoise SNR 1   PSNR noisy {dn['psnr_noisy_db']:.2f}  blur(s={dn['blur_sigma_pixels']}) "
          f"{dn['psnr_blur_db']:.2f}  denoised {dn['psnr_denoised_db']:.2f}  mean of {k} "
          f"{dn[f'psnr_denoised_mean_of_{k}_db']:.2f} dB")  # fmt: skip
    print(f"inpaint left    MSE hole {ip['mse_hole_inpainted']:.4f}"
          f"  mean of {k} {ip[f'mse_hole_mean_of_{k}']:.4f}"
          f"  mean fill {ip['mse_hole_mean_fill']:.4f}"
          f"  known bit-exact {ip['known_pixels_bit_exact']}")  # fmt: skip
    for r in gd["scales"]:
        print(f"guidance s={r['scale']:<5g} judge accuracy {r['accuracy']:.3f}")
    print(f"targets met {result['targets_met']}; wrote {path}; figures in {figs}")


if __name__ == "__main__":
    main()
