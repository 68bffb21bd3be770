"""`thermodiff evaluate`: K on held-out data, printed beside the truth and the paper."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from thermodiff.cli.args import device_of, load_weights
from thermodiff.errors import ThermodiffError


def format_report(r: dict) -> str:
    """A side-by-side table of our figures, the truth and the paper's."""
    unit = r["unit"]
    lines = [
        f"{r['kernel']} diffusion, T = {r['T']}, {r['n_examples']} {r['split']} examples, {r['t_draws']}"
        + (f"; {r['weights']} weights at step {r['step']}" if "weights" in r else ""),
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
    if "respaced" in r:
        lines += respaced_lines(r["respaced"], unit)
    paper = r.get("paper", {})
    if paper:
        ref = ", ".join(f"{k} = {v}" for k, v in paper.items())
        lines.append(f"  paper (Table 1): {ref}")
    return "\n".join(lines)


def respaced_lines(s: dict, unit: str) -> list[str]:
    """The respaced chain's K beside the full chain's (evaluate --steps)."""
    lines = [
        f"  respaced chain, {s['n_steps']} steps ({s['steps']}), the same examples:",
        f"    K          = {s['K_bits']:9.4f} ± {s['stderr_bits']:.4f} {unit};  minus the full chain's K = "
        f"{s['minus_full_K_bits']:.4f} ± {s['minus_full_K_stderr_bits']:.4f} (paired)",
        f"    K - L_null = {s['K_minus_Lnull_bits']:9.4f} ± {s['K_minus_Lnull_stderr_bits']:.4f} {unit}",
    ]
    if "gap_to_truth_bits" in s:
        lines.append(f"    gap truth - K = {s['gap_to_truth_bits']:.4f} ± {s['gap_stderr_bits']:.4f}")
    terms = ", ".join(f"{k} {v:.4f}" for k, v in s["terms_bits"].items())
    lines.append(f"    terms: {terms}")
    return lines


def cmd_evaluate(args) -> int:
    from thermodiff.data import load_dataset
    from thermodiff.evaluation import records
    from thermodiff.evaluation.heldout import report

    run = load_weights(args)
    cfg, model, device = run.config, run.model, device_of(args.device)
    ds = load_dataset(cfg.data)
    if (ds.spec.shape, ds.spec.kind) != (run.spec.shape, run.spec.kind):
        raise ThermodiffError(
            f"{args.run}: data.name = {cfg.data.name!r} gives {ds.spec.kind} data of shape {ds.spec.shape}, "
            f"but the network was trained on {run.spec.kind} data of shape {run.spec.shape}"
        )
    exact = cfg.eval.exact if args.exact is None else args.exact
    draws = args.draws  # exact: x_t draws per step; stochastic: t draws per example
    n_asked = args.n or cfg.eval.n
    n = min(n_asked, (ds.test if args.split == "test" else ds.train).shape[0])
    name = records.eval_name(args.split, exact, draws, n, run.weights, run.step, args.parzen)
    if args.chain_steps:  # the respaced chain's K rides along: say so in the name
        name = name + "_chain" + re.sub(r"[^0-9a-z,]", "", args.chain_steps.lower()).replace(",", "-")
    own = records.is_own(cfg, args.split, exact, draws, n_asked, run.weights)
    paths = records.planned_paths(Path(args.run), name, args.out and Path(args.out), own)
    ref = {
        "K_bits": cfg.eval.reference_K_bits,
        "K_minus_Lnull_bits": cfg.eval.reference_K_minus_Lnull_bits,
    }
    if args.parzen and (not ds.units.eight_bit or args.parzen_samples < 1):
        raise ThermodiffError("--parzen needs 8-bit image data and --parzen-samples >= 1")
    steps = args.chain_steps
    r = report(model, ds, n_asked, exact, cfg.eval.batch, device, args.split, ref, args.draws, steps)
    r["step"], r["weights"] = run.step, run.weights
    if not math.isfinite(r["K_bits"]):
        raise ThermodiffError(f"K = {r['K_bits']}: the bound is not finite for this model; nothing written")
    if args.parzen:  # P 3.3: the paper's MNIST Parzen-window estimate (parzen.py)
        from thermodiff.evaluation.parzen import parzen_report

        r.update(parzen_report(model, ds, args.parzen_samples, device=device))
    records.record(Path(args.run), r, paths)
    print(json.dumps(r) if args.json else format_report(r))
    if not args.json:
        print(f"  wrote {', '.join(str(p) for p in paths[:-1])}")
    return 0
