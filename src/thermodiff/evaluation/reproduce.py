"""`thermodiff reproduce`: one command per paper experiment: train, evaluate, figures."""

from __future__ import annotations

from pathlib import Path

from thermodiff.config import load_toml
from thermodiff.data import load_dataset
from thermodiff.evaluation.heldout import report
from thermodiff.run.checkpoint import atomic_write_text, check_writable
from thermodiff.run.load import load_run
from thermodiff.training.train import train

_IMAGE_QUICK = (
    "train.steps=1500",
    "train.batch=32",
    "train.sample_every=0",
    "train.ema=0.99",  # a 0.999 average would still hold ~22% initial weights at 1500 steps
    "data.n_train=5000",
    "data.n_test=500",
    "eval.n=30",
    "eval.batch=250",
    "eval.exact=true",
)

# experiment -> (config, overrides) per budget
EXPERIMENTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "heartbeat": {
        "quick": ("heartbeat", ("train.steps=20000",)),
        "full": ("heartbeat", ()),
    },
    "swiss_roll": {
        "quick": ("swiss_roll", ("train.steps=8000", "eval.n=2000")),
        "full": ("swiss_roll", ()),
    },
    # images (P 3.2): quick = a few CPU minutes at 16 x 16 (or a narrower net), evaluated over all t on
    # 30 test images (one random t per example on 500 has a ~3x larger standard error; under the paper's
    # own schedule it is also heavy-tailed: the t = 2 term is drawn once in T - 1); full = the bundled
    # config (sized for a GPU).
    "dead_leaves": {
        "quick": ("dead_leaves", (*_IMAGE_QUICK, "data.image_size=16", "model.conv_channels=32")),
        "full": ("dead_leaves", ()),
    },
    "bark": {
        "quick": ("bark", (*_IMAGE_QUICK, "data.image_size=16", "model.conv_channels=32")),
        "full": ("bark", ()),
    },
    "mnist": {
        "quick": ("mnist", (*_IMAGE_QUICK, "train.steps=2000", "eval.n=100")),
        "full": ("mnist", ()),
    },
    "cifar10": {
        "quick": (
            "cifar10",
            (
                *_IMAGE_QUICK,
                "train.steps=300",
                "train.batch=32",
                "model.conv_layers=3",
                "model.conv_channels=32",
                "model.dense_layers=2",
                "model.dense_hidden=256",
                "model.pixel_hidden=32",
                "train.precision=fp32",
                "eval.n=10",
            ),
        ),
        "full": ("cifar10", ()),
    },
}


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
