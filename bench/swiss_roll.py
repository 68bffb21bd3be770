"""Swiss roll likelihood benchmark (issue: foundation): K at T = 40 and at a larger T, beside the
data's true log-likelihood and the paper's 2.35 bits. Writes bench/results/swiss_roll.json.

    python bench/swiss_roll.py [--steps N] [--big-T 100] [--device cpu|cuda] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from benchio import write_json

from thermodiff import load_dataset, load_run, load_toml, report, train

PAPER_K_BITS = 2.35


def run_one(T: int, steps: int, device: str, out: Path, extra: list[str]) -> dict:
    cfg = load_toml("swiss_roll", [f"diffusion.T={T}", f"train.steps={steps}", *extra])
    run_dir = out / f"T{T}"
    t0 = time.time()
    train(cfg, run_dir, device=device, resume=(run_dir / "checkpoints" / "LATEST").exists())
    train_s = time.time() - t0
    run = load_run(run_dir, device)
    cfg, model, step = run.config, run.model, run.step
    r = report(model, load_dataset(cfg.data), cfg.eval.n, True, cfg.eval.batch, device)
    keep = (
        "K_bits stderr_bits K_minus_Lnull_bits L_null_bits true_loglik_bits gap_to_truth_bits "
        "gap_stderr_bits n_examples T"
    ).split()
    row = {k: r[k] for k in keep}
    row.update(
        steps=step,
        batch=cfg.train.batch,
        train_seconds=round(train_s, 1),
        device=device,
        torch_threads=torch.get_num_threads(),
        K_above_truth_by_3se=r["gap_to_truth_bits"] < -3 * r["gap_stderr_bits"],
        config=cfg.to_dict(),
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=15_000)
    p.add_argument("--big-T", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/bench_swiss_roll")
    p.add_argument("--set", action="append", default=[], help="extra config overrides for both runs")
    args = p.parse_args()
    out = Path(args.out)
    rows = [run_one(T, args.steps, args.device, out, args.set) for T in (40, args.big_T)]
    result = {
        "benchmark": "swiss_roll",
        "paper_K_bits_T40": PAPER_K_BITS,
        "targets": {"K_bits_at_T40": ">= 2.35", "gap_to_truth_bits_any_T": "< 0.1"},
        "runs": rows,
    }
    path = Path(__file__).parent / "results" / "swiss_roll.json"
    write_json(path, result)
    print(f"{'T':>5} {'K bits':>16} {'truth':>8} {'gap':>16} {'train s':>8}")
    for r in rows:
        print(
            f"{r['T']:>5} {r['K_bits']:8.3f} ± {r['stderr_bits']:.3f} {r['true_loglik_bits']:8.3f} "
            f"{r['gap_to_truth_bits']:8.3f} ± {r['gap_stderr_bits']:.3f} {r['train_seconds']:8.1f}"
        )
    print(f"paper (T = 40): K = {PAPER_K_BITS} bits; wrote {path}")


if __name__ == "__main__":
    main()
