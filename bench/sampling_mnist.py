"""Sampling in fewer steps on MNIST (issue 15, parts b and c): a CPU-sized U-Net (configs/mnist_unet.toml
with overrides, T = 1,000) sampled ancestrally on respaced chains of 1,000, 250, 100, 50, 25 and 10 steps.
For each: bits/dim of that chain on the 8-bit grid (evaluate's figure, one t per test image, with its
standard error), the Fréchet distance between the samples and test images in the feature space of the
project's own clean MNIST classifier (configs/mnist_classifier.toml, train.task = clean_classifier), and
the CPU time per sample as a ratio to the full chain's. Part (c): the per-step cost of our DDIM loop
against diffusers' DDIMScheduler loop calling the same U-Net, in the same run, as a ratio (only with
--diffusers DIR, a directory holding diffusers, added to sys.path for this bench alone).
Writes bench/results/sampling_mnist.json and sampling_mnist.png.

    THERMODIFF_DATA=/work/shared/data python bench/sampling_mnist.py --unet RUN --classifier RUN
        [--samples 300] [--eval-n 500] [--reference 2000] [--diffusers DIR]
    python bench/sampling_mnist.py --unet RUN --timing-only --diffusers DIR    # part (c) alone

Train the two runs first (the commands the JSON records, about 8 and 1.5 CPU-minutes on one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import median

import torch
from benchio import write_json

from thermodiff import load_dataset, load_run
from thermodiff.evaluation.frechet import classifier_features, feature_stats, frechet_distance
from thermodiff.evaluation.heldout import report
from thermodiff.sampling.ancestral import sample
from thermodiff.sampling.chain import chain_of
from thermodiff.sampling.guidance import accuracy, load_classifier

STEP_COUNTS = (1000, 250, 100, 50, 25, 10)
TRAIN_COMMANDS = [
    "thermodiff train mnist_unet --out UNET --threads 1 --set model.base=16 --set model.mults=1,2 "
    "--set model.num_res_blocks=1 --set model.attn_resolutions= --set model.dropout=0 --set train.batch=32 "
    "--set train.steps=3000 --set train.lr=1e-3 --set train.warmup=100 --set train.ema=0.995 "
    "--set train.sample_every=0 --set train.channels_last=false",
    # the clean judge sees t = 0 only: no diffusion run needed; the same 10,000 images give the same scaling
    "thermodiff train mnist_classifier --out CLF --threads 1 --set train.task=clean_classifier "
    "--set diffusion.from_run= --set data.n_train=10000 --set model.base=16 --set train.batch=64 "
    "--set train.steps=800 --set train.lr=2e-3 --set train.warmup=50 --set train.ema=0.99",
]


def fd_to(stats: tuple[torch.Tensor, torch.Tensor], feats: torch.Tensor) -> float:
    return frechet_distance(*feature_stats(feats), *stats)


def fd_spread(stats: tuple[torch.Tensor, torch.Tensor], feats: torch.Tensor, draws: int = 200) -> float:
    """The bootstrap standard deviation of fd_to over the samples (resampled with replacement): how much
    the distance moves with the samples drawn, at this sample size."""
    g = torch.Generator().manual_seed(0)
    n = feats.shape[0]
    values = [fd_to(stats, feats[torch.randint(0, n, (n,), generator=g)]) for _ in range(draws)]
    return float(torch.tensor(values).std())


def quality(run, ds, clf_net, stats, steps: int, n: int, eval_n: int, draws: int) -> dict:
    """One step count: samples' Fréchet distance, bits/dim of the chain, CPU time per sample."""
    T = run.model.schedule.T
    chain = chain_of(run.model, None if steps == T else steps)
    t0 = time.process_time()
    x = sample(chain.kernel, chain.model_fn, ds.spec.shape, n, torch.Generator().manual_seed(0))
    cpu = time.process_time() - t0
    r = report(run.model, ds, eval_n, exact=False, batch=250, draws=draws, steps=steps)
    s = r["respaced"]
    feats = classifier_features(clf_net, x.float())
    return {
        "steps": steps,
        "frechet_distance": fd_to(stats, feats),
        "frechet_bootstrap_sd": fd_spread(stats, feats),
        "nll_bits_per_dim": s["nll_bits_per_dim"],
        "nll_stderr_bits_per_dim": s["nll_stderr_bits_per_dim"],
        "full_chain_nll_bits_per_dim": r["nll_bits_per_dim"],
        "K_bits_per_dim": s["K_bits"] * r["units_per_example"] / r["dims"],
        "K_minus_full_K_bits_per_dim": s["minus_full_K_bits"] * r["units_per_example"] / r["dims"],
        "K_minus_full_K_stderr_bits_per_dim": s["minus_full_K_stderr_bits"]
        * r["units_per_example"]
        / r["dims"],
        "cpu_seconds_per_sample": cpu / n,
    }


def net_eps(net: torch.nn.Module):
    """(x, diffusers' 0-based t) -> the network's eps at our step t + 1 (its first output channels)."""

    def eps(x: torch.Tensor, t) -> torch.Tensor:
        steps = torch.full((x.shape[0],), int(t) + 1, dtype=torch.long)
        return net(x, steps)[:, : x.shape[1]]

    return eps


class NullNet(torch.nn.Module):
    """A network that costs nothing: one real pass's raw output, returned for every (x, t), so that a
    loop's time is its own (the sampler's arithmetic and bookkeeping) and not the network's."""

    def __init__(self, raw: torch.Tensor):
        super().__init__()
        self.raw = raw
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # model_fn reads the dtype off a parameter

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.raw[: x.shape[0]]


def loops(model, net: torch.nn.Module, shape, batch: int, steps: int) -> dict:
    """Our DDIM loop (sample() with DDIM's rule, eta = 0), diffusers' DDIMScheduler loop and the bare
    network calls, each on `net`. All three see the same inputs: one x_T, the same 50 steps (ddim50 here
    is diffusers' leading spacing), and the bare calls replay the states of a diffusers run, since this
    network's CPU time depends on its input (up to 10% here, subnormal floats among them)."""
    from diffusers import DDIMScheduler

    betas = model.schedule.betas().detach()[1:].numpy()
    sched = DDIMScheduler(
        num_train_timesteps=len(betas), trained_betas=betas, clip_sample=False, prediction_type="epsilon",
        timestep_spacing="leading", set_alpha_to_one=False,
    )  # fmt: skip
    eps = net_eps(net)
    chain = chain_of(model, f"ddim{steps}", "ddim", net=net)
    x_T = torch.randn((batch, *shape), generator=torch.Generator().manual_seed(0))

    def ours() -> None:
        sample(chain.kernel, chain.model_fn, shape, batch, x_T=x_T.double(), rule=chain.rule)

    def theirs(record: list | None = None) -> None:
        sched.set_timesteps(steps)
        x = x_T
        for t in sched.timesteps:
            if record is not None:
                record.append((x, t))
            x = sched.step(eps(x, t), t, x).prev_sample

    states: list = []
    theirs(states)

    def bare() -> None:
        for x, t in states:
            eps(x, t)

    # network passes: ours skips step 1 (the fixed reversal, P App. B.2), diffusers calls it every step
    calls = {"ours": steps - (chain.kernel.t_first - 1), "diffusers": steps, "network_only": steps}
    return {
        "loops": {"ours": ours, "diffusers": theirs, "network_only": bare},
        "calls": calls,
        "chain": chain,
    }


def timings(found: dict, repeats: int) -> dict:
    """CPU seconds per network pass of each loop, interleaved `repeats` times (process time): the fastest
    and the median run of each."""
    runs: dict[str, list[float]] = {name: [] for name in found["loops"]}
    for _ in range(repeats):
        for name, fn in found["loops"].items():
            t0 = time.process_time()
            fn()
            runs[name].append((time.process_time() - t0) / found["calls"][name])
    return {
        how: {k: pick(v) for k, v in runs.items()} for how, pick in (("fastest", min), ("median", median))
    }


@torch.no_grad()
def per_step_costs(run, shape, batch: int, steps: int, repeats: int) -> dict:
    """Per network pass: our DDIM loop and diffusers' DDIMScheduler loop on the run's U-Net (and the bare
    network), and the two loops' own cost per step with a network that costs nothing (NullNet)."""
    real = loops(run.model, run.model.net, shape, batch, steps)
    per_pass = timings(real, repeats)
    x = torch.zeros((batch, *shape))
    null = NullNet(run.model.net(x, torch.full((batch,), 500, dtype=torch.long)))
    own = timings(loops(run.model, null, shape, batch, steps), 10 * repeats)
    out = {
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "timed_unet_steps": run.step,
        "network_passes": real["calls"],
    }
    for how in ("fastest", "median"):
        best, loop = per_pass[how], own[how]
        out[how] = {
            "cpu_seconds_per_network_pass": best,
            "ours_over_diffusers": best["ours"] / best["diffusers"],
            "loop_overhead_ours": best["ours"] / best["network_only"] - 1,
            "loop_overhead_diffusers": best["diffusers"] / best["network_only"] - 1,
            "loop_only_microseconds_per_step": {k: v * 1e6 for k, v in loop.items()},
            "loop_only_ours_over_diffusers": loop["ours"] / loop["diffusers"],
        }
    return {
        **out,
        "loop_only_note": "the same loops on NullNet (one real pass's output returned for every call, "
        f"{10 * repeats} runs each): what each loop costs beside the network. Ours includes sample()'s "
        "argument checks; its memory probe runs on a model_fn's first call only (remembered per shape)",
        "diffusers_scheduler": "DDIMScheduler(trained_betas = the run's, leading spacing, eta = 0)",
        "our_chain": real["chain"].description,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--unet", required=True)
    p.add_argument("--classifier", help="the clean classifier's run (parts b); not needed with --timing-only")
    p.add_argument(
        "--timing-only", action="store_true", help="part (c) alone, replacing it in the existing JSON"
    )
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--eval-n", type=int, default=500)
    p.add_argument("--draws", type=int, default=1)
    p.add_argument("--reference", type=int, default=2000)
    p.add_argument("--steps", default=",".join(map(str, STEP_COUNTS)))
    p.add_argument("--diffusers", default="", help="a directory holding diffusers (part c); absent: skipped")
    p.add_argument("--timing-batch", type=int, default=16)
    p.add_argument("--timing-steps", type=int, default=50)
    p.add_argument("--timing-repeats", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.unet)
    out = Path(__file__).parent / "results" / "sampling_mnist.json"
    if args.timing_only:
        result = json.loads(out.read_text())
        result["per_step_cost"] = {
            **part_c(run, args),
            "timed_apart_from_rows": "part (c) rerun alone (--timing-only) on a U-Net trained by "
            "train_commands[0]; the rows' U-Net may be another run of that command (same network)",
        }
        write_json(out, result)
        print(result["per_step_cost"])
        return
    if not args.classifier:
        raise SystemExit("--classifier RUN is needed for part (b)")
    clf = load_classifier(Path(args.classifier))
    ds = load_dataset(run.config.data)
    if clf.scaling != ds.scaling:
        raise SystemExit("the classifier was trained on differently scaled data than the U-Net")
    judge = accuracy(clf, ds.test[: args.reference].float(), ds.labels_test[: args.reference])
    ref = classifier_features(clf.net, ds.test[: args.reference].float())
    stats = feature_stats(ref)
    floor_x = ds.test[args.reference : args.reference + args.samples]
    floor_feats = classifier_features(clf.net, floor_x.float())
    floor, floor_sd = fd_to(stats, floor_feats), fd_spread(stats, floor_feats)
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        rows.append(quality(run, ds, clf.net, stats, steps, args.samples, args.eval_n, args.draws))
        print(rows[-1], flush=True)
    full = next(r for r in rows if r["steps"] == run.model.schedule.T)
    for r in rows:
        r["frechet_ratio_to_full_chain"] = r["frechet_distance"] / full["frechet_distance"]
        r["time_ratio_to_full_chain"] = r["cpu_seconds_per_sample"] / full["cpu_seconds_per_sample"]
        se = r["K_minus_full_K_stderr_bits_per_dim"]
        r["K_above_full_beyond_stderr"] = r["K_minus_full_K_bits_per_dim"] > se
    result = {
        "benchmark": "sampling_mnist",
        "what": "MNIST, T = 1000, CPU-sized U-Net, respaced ancestral chains: bits/dim of the chain, "
        "Fréchet distance to test images in the clean classifier's feature space",
        "train_commands": TRAIN_COMMANDS,
        "unet_steps": run.step,
        "samples_per_chain": args.samples,
        "reference_test_images": args.reference,
        "frechet_features": f"the clean classifier's pooled penultimate layer ({ref.shape[1]} dims)",
        "classifier_test_accuracy": judge,
        "frechet_floor": floor,
        "frechet_floor_bootstrap_sd": floor_sd,
        "frechet_floor_note": f"{args.samples} other test images against the same reference: what the "
        "distance reads for real data at this sample size (its bias)",
        "eval_n": args.eval_n,
        "bits_per_dim_note": "one uniform t per test image (unbiased, with its standard error); the "
        "full chain's figure uses the same images and draws in every row",
        "torch_threads": torch.get_num_threads(),
        "target": "Fréchet distance at 100 steps within 10% of the full chain's",
        "rows": rows,
    }
    result["per_step_cost"] = part_c(run, args)
    write_json(out, result)
    print(result.get("per_step_cost"))
    plot(rows, floor, out.with_suffix(".png"))


def part_c(run, args) -> dict:
    """per_step_costs against diffusers when it is importable (--diffusers DIR), else why not."""
    if args.diffusers:
        sys.path.append(args.diffusers)  # appended: torch and numpy stay the environment's
    try:
        import diffusers
    except ImportError as e:
        return {"skipped": f"diffusers is not importable ({e}); pass --diffusers DIR"}
    shape = tuple(run.spec.shape)
    cost = per_step_costs(run, shape, args.timing_batch, args.timing_steps, args.timing_repeats)
    return {**cost, "diffusers_version": diffusers.__version__}


def plot(rows: list[dict], floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["steps"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    fd, sd = [r["frechet_distance"] for r in rows], [r["frechet_bootstrap_sd"] for r in rows]
    axes[0].errorbar(steps, fd, sd, fmt="o-", label="samples (bootstrap sd)")
    axes[0].axhline(floor, color="grey", ls=":", label="test images (floor)")
    axes[0].legend()
    axes[1].errorbar(
        steps, [r["nll_bits_per_dim"] for r in rows], [r["nll_stderr_bits_per_dim"] for r in rows], fmt="o-"
    )
    titles = ("Fréchet distance (clean classifier features)", "bits/dim of the chain (8-bit grid)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("steps sampled (of T = 1000)")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
