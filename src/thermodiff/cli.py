"""thermodiff's command line (DESIGN.md 3). The only module that parses arguments or prints."""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
import threading
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


def _check_args(args: argparse.Namespace) -> None:
    from thermodiff.config_rules import within

    for name, interval in _ARG_RANGES.items():
        value = getattr(args, name, None)
        if value is not None and not within(value, interval):
            raise ThermodiffError(f"--{name.replace('_', '-')} = {value} must lie in {interval}")


def _default_out(config: str) -> Path:
    return Path("runs") / Path(config).stem


def cmd_train(args) -> int:
    from thermodiff import distributed as dist
    from thermodiff.config import load_toml
    from thermodiff.train import train

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
    from thermodiff.checkpoint import atomic_write_text, check_writable
    from thermodiff.data import load_dataset
    from thermodiff.evaluate import report
    from thermodiff.run import load_run

    device = _device(args.device)
    cfg, model, _, _, step = load_run(Path(args.run), device)
    out = check_writable(Path(args.run) / "eval.json")
    ds = load_dataset(cfg.data)
    exact = cfg.eval.exact if args.exact is None else args.exact
    ref = {
        "K_bits": cfg.eval.reference_K_bits,
        "K_minus_Lnull_bits": cfg.eval.reference_K_minus_Lnull_bits,
    }
    if args.parzen and (ds.spec.kind != "image8" or args.parzen_samples < 1):
        raise ThermodiffError("--parzen needs 8-bit image data and --parzen-samples >= 1")
    r = report(model, ds, args.n or cfg.eval.n, exact, cfg.eval.batch, device, args.split, ref, args.draws)
    r["step"] = step
    if not math.isfinite(r["K_bits"]):
        raise ThermodiffError(f"K = {r['K_bits']}: the bound is not finite for this model; nothing written")
    if args.parzen:  # P 3.3: the paper's MNIST Parzen-window estimate (parzen.py)
        from thermodiff.parzen import parzen_report

        r.update(parzen_report(model, ds, args.parzen_samples, device=device))
    atomic_write_text(out, json.dumps(r, indent=1))
    print(json.dumps(r) if args.json else format_report(r))
    return 0


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from thermodiff.checkpoint import atomic_write_bytes
    from thermodiff.imageio import check_out
    from thermodiff.plots import image_grid, scatter
    from thermodiff.run import load_run
    from thermodiff.sample import data_box, sample

    device = _device(args.device)
    _, model, spec, scaling, _ = load_run(Path(args.run), device)
    out = check_out(args.out or Path(args.run) / "samples" / f"samples_seed{args.seed}.png")
    gen = torch.Generator(device).manual_seed(args.seed)
    kernel = model.kernel()
    mults = [] if args.no_clip else data_box(model, spec, scaling)
    if args.guide is not None:  # classifier guidance (ADM Alg. 1), checked before any output
        from thermodiff.tasks import guidance

        if not args.classifier:
            raise ThermodiffError("--guide needs --classifier RUN (a run with train.task = classifier)")
        mults += guidance(args.classifier, args.guide, args.scale, model, scaling, device)
    elif args.classifier or args.scale != 1.0:
        raise ThermodiffError("--classifier and --scale go with --guide CLASS")
    x = sample(kernel, model.model_fn(kernel, graphed=True), spec.shape, args.n, gen, device, mults)
    if not torch.isfinite(x).all():
        raise ThermodiffError("the samples hold NaN or infinite values; nothing written")
    x = scaling.invert(x.cpu()) if spec.kind in ("continuous", "image8") else x.cpu()  # data units
    if out.suffix == ".npy":
        import io

        buf = io.BytesIO()
        np.save(buf, x.numpy())
        atomic_write_bytes(out, buf.getvalue())
    elif len(spec.shape) == 1 and spec.shape[0] == 2:
        scatter(x, out, title=f"{args.n} samples")
    else:
        shape = spec.shape if len(spec.shape) == 3 else (1, 1, math.prod(spec.shape))
        image_grid(x.reshape(-1, *shape).float() / (255.0 if spec.kind == "image8" else 1.0), out)
    print(f"wrote {out}")
    return 0


def cmd_reproduce(args) -> int:
    from thermodiff.reproduce import EXPERIMENTS, reproduce

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
    from thermodiff import tasks

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


def _add_condition_commands(sub) -> None:
    """The parsers of denoise, inpaint and interpolate (DESIGN.md 3); units in imageio.py."""
    d = sub.add_parser("denoise", help="denoise an observation y = x + noise (P Fig. 5)")
    d.add_argument("run")
    d.add_argument("--input", required=True, help="PNG or .npy (data units), the noisy y")
    d.add_argument("--noise-std", type=float, default=1.0, help="in units of the data std; 1 = SNR 1")
    d.add_argument("--add-noise", action="store_true", help="the input is clean: add the noise first")
    i = sub.add_parser("inpaint", help="fill the unknown pixels of an image (P Fig. 4)")
    i.add_argument("run")
    i.add_argument("--input", required=True, help="PNG or .npy (data units)")
    i.add_argument("--mask", required=True, help="PNG (white = known) or .npy (1 = known)")
    i.add_argument(
        "--schedule",
        choices=("forward", "constant"),
        default="forward",
        help="known pixels follow q(x_t | x_0) (forward) or stay clean at every step (constant, the paper's)",
    )
    for c in (d, i):
        c.add_argument("--no-clip", action="store_true", help="do not keep predicted images in 0..255")
    n = sub.add_parser("interpolate", help="mix two inputs through the noisy state at step t (DDPM 4.4)")
    n.add_argument("run")
    n.add_argument("--a", required=True)
    n.add_argument("--b", required=True)
    n.add_argument("--t", type=int, help="the step to mix at (default T/2)")
    n.add_argument("--steps", type=int, default=8, help="number of mixes, lambda = 0..1")
    for c in (d, i, n):
        c.add_argument("--out", help="FILE.png or FILE.npy (default RUN/samples/); figure: FILE_panel.png")
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--device", default="auto")
        c.set_defaults(func=cmd_condition)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line like every other thermodiff error (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"thermodiff: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="thermodiff", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a config (path or bundled name)")
    t.add_argument("config")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    t.add_argument("--out", help="run directory (default runs/CONFIG_NAME)")
    t.add_argument("--device", default="auto")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="the bound K on held-out data, in bits")
    e.add_argument("run")
    e.add_argument("--split", default="test", choices=["test", "train"])
    g = e.add_mutually_exclusive_group()
    g.add_argument("--exact", dest="exact", action="store_true", default=None, help="all t")
    g.add_argument("--stochastic", dest="exact", action="store_false", help="one random t per example")
    e.add_argument("--n", type=int, help="number of examples (default: eval.n)")
    e.add_argument("--draws", type=int, default=1, help="--stochastic: uniform t per example, averaged")
    e.add_argument("--json", action="store_true")
    e.add_argument("--parzen", action="store_true", help="also the Parzen-window estimate (P 3.3)")
    e.add_argument("--parzen-samples", type=int, default=10_000, help="model samples for --parzen")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw samples to PNG or .npy")
    s.add_argument("run")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out")
    s.add_argument("--device", default="auto")
    s.add_argument("--guide", type=int, metavar="CLASS", help="classifier guidance toward CLASS")
    s.add_argument("--scale", type=float, default=1.0, help="guidance gradient scale s (r = p(y|x_t)^s)")
    s.add_argument("--no-clip", action="store_true", help="images: do not keep predicted x_0 in 0..255")
    s.add_argument("--classifier", metavar="RUN", help="a noisy classifier run, for --guide")
    s.set_defaults(func=cmd_sample)
    _add_condition_commands(sub)

    r = sub.add_parser("reproduce", help="train + evaluate + figures for the paper's experiments")
    r.add_argument("experiments", nargs="*")
    r.add_argument("--budget", default="quick", choices=["quick", "full"])
    r.add_argument("--out", default="runs/reproduce")
    r.add_argument("--device", default="auto")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_reproduce)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():  # kill (torchrun's too) = Ctrl-C: clean up
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        _check_args(args)
        return args.func(args)
    except ThermodiffError as e:
        print(f"thermodiff: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path that cannot be read or written, a full disk
        where = f": {e.filename}" if e.filename else ""
        print(f"thermodiff: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thermodiff: interrupted", file=sys.stderr)
        return 130
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
