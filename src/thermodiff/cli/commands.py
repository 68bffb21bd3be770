"""What each command does, given its parsed arguments (the parser is main.py's)."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from thermodiff.errors import ThermodiffError


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ThermodiffError(f"--device must be auto, cpu, cuda or cuda:N, not {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ThermodiffError("--device cuda asked for, but no CUDA device is available")
    return name


# Numeric arguments and the interval each must lie in (config_rules' notation: NaN and inf never do),
# checked once for every command that has it; the upper bounds keep allocations in reach.
_ARG_RANGES = {
    "n": "[1, 1e7]",
    "draws": "[1, 1e4]",
    "parzen_samples": "[1, 1e7]",
    "steps": "[1, 1e4]",
    "seed": "[-2**63, 2**64)",
    "noise_std": "(0, inf)",
    "scale": "(-inf, inf)",
}


def check_args(args: argparse.Namespace) -> None:
    from thermodiff.config.rules import within

    for name, interval in _ARG_RANGES.items():
        value = getattr(args, name, None)
        if value is not None and not within(value, interval):
            raise ThermodiffError(f"--{name.replace('_', '-')} = {value} must lie in {interval}")


def _default_out(config: str) -> Path:
    return Path("runs") / Path(config).stem


def cmd_train(args) -> int:
    from thermodiff.config import load_toml
    from thermodiff.training import distributed as dist
    from thermodiff.training.train import train

    cfg = load_toml(args.config, args.set)
    device = dist.init_from_env(_device(args.device))
    out = Path(args.out) if args.out else _default_out(args.config)
    try:
        train(cfg, out, device=device, resume=args.resume, progress=not args.quiet, overrides=args.set)
        dist.barrier()  # no rank leaves while rank 0 still writes the last checkpoint
        main = dist.is_main()  # asked before shutdown, after which every process is "rank 0"
    finally:
        dist.shutdown()
    if main:
        guide = f"sample RUN --guide 0 --classifier {out}"
        nxt = f"evaluate {out}" if cfg.train.task == "diffusion" else guide
        print(f"trained: {out}  (next: thermodiff {nxt})")
    return 0


def format_report(r: dict) -> str:
    """A side-by-side table of our figures, the truth and the paper's."""
    unit = r["unit"]
    lines = [
        f"{r['kernel']} diffusion, T = {r['T']}, {r['n_examples']} {r['split']} examples, {r['t_draws']}",
        f"  K            = {r['K_bits']:9.4f} ± {r['stderr_bits']:.4f} {unit}"
        f"   ({r['K_bits_per_dim']:.4f} per dim)",
        f"  K - L_null   = {r['K_minus_Lnull_bits']:9.4f} ± {r['K_minus_Lnull_stderr_bits']:.4f} {unit}",
        f"  L_null       = {r['L_null_bits']:9.4f} {unit} (the data under the prior)",
    ]
    if "true_loglik_bits" in r:
        lines.append(
            f"  truth log p  = {r['true_loglik_bits']:9.4f} {unit};  gap truth - K = "
            f"{r['gap_to_truth_bits']:.4f} ± {r['gap_stderr_bits']:.4f}"
        )
    if "nll_nats" in r:
        lines.append(
            f"  NLL bound    = {r['nll_nats']:9.4f} ± {r['nll_stderr_nats']:.4f} nats/example"
            f" ({r['nll_bits_per_dim']:.4f} bits/dim)"
        )
    elif "nll_bits_per_dim" in r:
        lines.append(f"  NLL bound    = {r['nll_bits_per_dim']:9.4f} bits/dim (8-bit grid)")
    if "parzen_bits" in r:
        lines.append(
            f"  Parzen       = {r['parzen_bits']:9.1f} ± {r['parzen_stderr_bits']:.1f} bits/image"
            f" ({r['parzen_nats']:.1f} nats; sigma {r['parzen_sigma']:.3f}, {r['parzen_samples']} samples)"
        )
    paper = r.get("paper", {})
    if paper:
        ref = ", ".join(f"{k} = {v}" for k, v in paper.items())
        lines.append(f"  paper (Table 1): {ref}")
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    from thermodiff.data import load_dataset
    from thermodiff.evaluation.heldout import report
    from thermodiff.run.checkpoint import atomic_write_text, check_writable
    from thermodiff.run.load import load_run

    device = _device(args.device)
    run = load_run(Path(args.run), device)
    cfg, model = run.config, run.model
    out = check_writable(Path(args.run) / "eval.json")
    ds = load_dataset(cfg.data)
    exact = cfg.eval.exact if args.exact is None else args.exact
    ref = {
        "K_bits": cfg.eval.reference_K_bits,
        "K_minus_Lnull_bits": cfg.eval.reference_K_minus_Lnull_bits,
    }
    if args.parzen and (not ds.units.eight_bit or args.parzen_samples < 1):
        raise ThermodiffError("--parzen needs 8-bit image data and --parzen-samples >= 1")
    r = report(model, ds, args.n or cfg.eval.n, exact, cfg.eval.batch, device, args.split, ref, args.draws)
    r["step"] = run.step
    if not math.isfinite(r["K_bits"]):
        raise ThermodiffError(f"K = {r['K_bits']}: the bound is not finite for this model; nothing written")
    if args.parzen:  # P 3.3: the paper's MNIST Parzen-window estimate (parzen.py)
        from thermodiff.evaluation.parzen import parzen_report

        r.update(parzen_report(model, ds, args.parzen_samples, device=device))
    atomic_write_text(out, json.dumps(r, indent=1))
    print(json.dumps(r) if args.json else format_report(r))
    return 0


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from thermodiff.data.files import check_out
    from thermodiff.plots.draw import image_grid, scatter
    from thermodiff.run.checkpoint import atomic_write_bytes
    from thermodiff.run.load import load_run
    from thermodiff.sampling.ancestral import data_box, sample

    device = _device(args.device)
    run = load_run(Path(args.run), device)
    model, spec, units = run.model, run.spec, run.units
    out = check_out(args.out or Path(args.run) / "samples" / f"samples_seed{args.seed}.png")
    gen = torch.Generator(device).manual_seed(args.seed)
    kernel = model.kernel()
    mults = [] if args.no_clip else data_box(model, units)
    if args.guide is not None:  # classifier guidance (ADM Alg. 1), checked before any output
        from thermodiff.sampling.tasks import guidance

        if not args.classifier:
            raise ThermodiffError("--guide needs --classifier RUN (a run with train.task = classifier)")
        mults += guidance(args.classifier, args.guide, args.scale, model, run.scaling, device)
    elif args.classifier or args.scale != 1.0:
        raise ThermodiffError("--classifier and --scale go with --guide CLASS")
    x = sample(kernel, model.model_fn(kernel, graphed=True), spec.shape, args.n, gen, device, mults)
    if not torch.isfinite(x).all():
        raise ThermodiffError("the samples hold NaN or infinite values; nothing written")
    x = units.to_data(x.cpu())
    if out.suffix == ".npy":
        import io

        buf = io.BytesIO()
        np.save(buf, x.numpy())
        atomic_write_bytes(out, buf.getvalue())
    elif len(spec.shape) == 1 and spec.shape[0] == 2:
        scatter(x, out, title=f"{args.n} samples")
    else:
        image_grid(units.grid(x), out)
    print(f"wrote {out}")
    return 0


def cmd_reproduce(args) -> int:
    from thermodiff.evaluation.reproduce import EXPERIMENTS, reproduce

    names = args.experiments or list(EXPERIMENTS)
    for name in names:
        if name not in EXPERIMENTS:
            raise ThermodiffError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    for name in names:
        out = Path(args.out) / name if len(names) > 1 else Path(args.out)
        result = reproduce(name, args.budget, out, _device(args.device), progress=not args.quiet)
        print(format_report(result))
        for path in result.get("figures", []):
            print(f"  figure: {path}")
    return 0


def cmd_condition(args) -> int:
    """denoise / inpaint / interpolate (P 2.5; tasks.py): file in -> file out, plus a panel figure."""
    from thermodiff.sampling import tasks

    device, common = _device(args.device), {"out": args.out, "seed": args.seed}
    if args.command == "denoise":
        paths = tasks.denoise_file(
            args.run,
            args.input,
            noise_std=args.noise_std,
            add_noise=args.add_noise,
            device=device,
            clip=not args.no_clip,
            **common,
        )
    elif args.command == "inpaint":
        kw = {"device": device, "clip": not args.no_clip, "schedule": args.schedule, **common}
        paths = tasks.inpaint_file(args.run, args.input, args.mask, **kw)
    else:
        kw = {"t": args.t, "steps": args.steps, "device": device, **common}
        paths = tasks.interpolate_file(args.run, args.a, args.b, **kw)
    for path in paths:
        print(f"wrote {path}")
    return 0
