"""`thermodiff reproduce`: one command per paper experiment: train, evaluate, figures."""

from __future__ import annotations

from pathlib import Path

from thermodiff.config import load_toml
from thermodiff.data import load_dataset
from thermodiff.evaluation.experiments import EXPERIMENTS
from thermodiff.evaluation.figures import run_figures
from thermodiff.evaluation.heldout import report
from thermodiff.evaluation.records import eval_name, planned_paths, record
from thermodiff.run.card import write_card
from thermodiff.run.checkpoint import check_writable
from thermodiff.run.load import load_run
from thermodiff.training.train import train


def reproduce(name: str, budget: str, out: Path, device: str = "cpu", progress: bool = True) -> dict:
    """Train the experiment's config (fresh, or resumed if `out` holds it), evaluate, draw figures;
    the evaluation goes to eval.json (the run's own) and evals/ (records.py)."""
    config, overrides = EXPERIMENTS[name][budget]
    cfg = load_toml(config, overrides)
    out = Path(out)
    check_writable(out / "eval.json")  # before the training, not after it
    resume = (out / "config.json").exists()  # an interrupted reproduce continues
    # every field counts as given: out holds this experiment's run or nothing
    every_field = [f"{section}.{key}" for section, fields in cfg.to_dict().items() for key in fields]
    train(cfg, out, device=device, resume=resume, progress=progress, overrides=every_field)
    run = load_run(out, device)
    cfg, model = run.config, run.model
    ds = load_dataset(cfg.data)
    ref = {
        "K_bits": cfg.eval.reference_K_bits,
        "K_minus_Lnull_bits": cfg.eval.reference_K_minus_Lnull_bits,
    }
    result = report(model, ds, cfg.eval.n, cfg.eval.exact, cfg.eval.batch, device, "test", ref)
    result["step"], result["weights"] = run.step, run.weights
    figures = run_figures(run, ds, out, device)
    result["figures"] = [f.as_dict() for f in figures]
    name = eval_name("test", cfg.eval.exact, 1, result["n_examples"], run.weights, run.step, False)
    record(out, result, planned_paths(out, name, None, own=True))
    write_card(out, cfg, run.step, result)
    return result
