"""`thermodiff reproduce`: one command per paper experiment: train, evaluate, figures."""

from __future__ import annotations

from pathlib import Path

from thermodiff.config import load_toml
from thermodiff.data import load_dataset
from thermodiff.evaluation.experiments import EXPERIMENTS
from thermodiff.evaluation.heldout import report
from thermodiff.run.checkpoint import atomic_write_text, check_writable
from thermodiff.run.load import load_run
from thermodiff.training.train import train


def reproduce(name: str, budget: str, out: Path, device: str = "cpu", progress: bool = True) -> dict:
    """Train the experiment's config (fresh, or resumed if `out` holds it), evaluate, draw figures."""
    import json

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
    result["step"] = run.step
    figures = []
    if ds.spec.shape == (2,):
        from thermodiff.evaluation.figure1 import swiss_roll_figure

        figures.append(str(swiss_roll_figure(model, ds, out / "figure1.png")))
    if ds.units.eight_bit:  # 16 samples (EMA net, seed 0) as one grid in [0, 1]
        from thermodiff.sampling.ancestral import sample_grid

        figures.append(str(sample_grid(model, ds.spec, ds.scaling, out / "samples.png", device=device)))
    result["figures"] = figures
    atomic_write_text(out / "eval.json", json.dumps(result, indent=1))
    return result
