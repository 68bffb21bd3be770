"""`thermodiff reproduce`: one command per paper experiment: train, evaluate, figures."""

from __future__ import annotations

from pathlib import Path

from thermodiff.checkpoint import atomic_write_text
from thermodiff.config import load_toml
from thermodiff.data import load_dataset
from thermodiff.evaluate import report
from thermodiff.run import load_run
from thermodiff.train import train

# experiment -> (config, overrides) per budget
EXPERIMENTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "swiss_roll": {
        "quick": ("swiss_roll", ("train.steps=3000", "eval.n=2000")),
        "full": ("swiss_roll", ()),
    },
}


def reproduce(name: str, budget: str, out: Path, device: str = "cpu", progress: bool = True) -> dict:
    """Train the experiment's config (fresh, or resumed if `out` holds it), evaluate, draw figures."""
    import json

    config, overrides = EXPERIMENTS[name][budget]
    cfg = load_toml(config, overrides)
    out = Path(out)
    resume = (out / "checkpoints" / "LATEST").exists()
    train(cfg, out, device=device, resume=resume, progress=progress)
    cfg, model, _, _, step = load_run(out, device)
    ds = load_dataset(cfg.data)
    ref = {
        "K_bits": cfg.eval.reference_K_bits,
        "K_minus_Lnull_bits": cfg.eval.reference_K_minus_Lnull_bits,
    }
    result = report(model, ds, cfg.eval.n, cfg.eval.exact, cfg.eval.batch, device, "test", ref)
    result["step"] = step
    figures = []
    if ds.spec.shape == (2,):
        from thermodiff.figures import swiss_roll_figure

        figures.append(str(swiss_roll_figure(model, ds, out / "figure1.png")))
    result["figures"] = figures
    atomic_write_text(out / "eval.json", json.dumps(result, indent=1))
    return result
