"""thermodiff: diffusion probabilistic models (Sohl-Dickstein et al. 2015), the bound K in bits.

The public API, one level, in the order data take: a config and its data, a network of one's own
(registered by name), training, the run directory, then evaluation, sampling and conditioning. The math
(kernels, reverse-step types, the bound's terms) is its own public sub-package, `thermodiff.diffusion`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name -> the module that defines it, imported on first use (PEP 562), so that
# `thermodiff --help` and `import thermodiff.config` do not load torch.
_WHERE = {
    "Config": "thermodiff.config",
    "load_toml": "thermodiff.config",
    "with_overrides": "thermodiff.config",
    "Dataset": "thermodiff.data",
    "DataSpec": "thermodiff.data",
    "Scaling": "thermodiff.data",
    "Units": "thermodiff.data",
    "load_dataset": "thermodiff.data",
    "register_data": "thermodiff.data",
    "continuous_dataset": "thermodiff.data.vectors",
    "report": "thermodiff.evaluation.heldout",
    "parzen_report": "thermodiff.evaluation.parzen",
    "register_net": "thermodiff.nets",
    "condition_panel": "thermodiff.plots.draw",
    "Run": "thermodiff.run.load",
    "load_run": "thermodiff.run.load",
    "data_box": "thermodiff.sampling.ancestral",
    "sample": "thermodiff.sampling.ancestral",
    "sample_grid": "thermodiff.sampling.ancestral",
    "Classifier": "thermodiff.sampling.guidance",
    "accuracy": "thermodiff.sampling.guidance",
    "load_classifier": "thermodiff.sampling.guidance",
    "interpolate": "thermodiff.sampling.interpolate",
    "BernoulliMask": "thermodiff.sampling.multipliers",
    "BernoulliObservation": "thermodiff.sampling.multipliers",
    "ClassifierGuidance": "thermodiff.sampling.multipliers",
    "GaussianObservation": "thermodiff.sampling.multipliers",
    "LogDensityGradient": "thermodiff.sampling.multipliers",
    "Mask": "thermodiff.sampling.multipliers",
    "denoise": "thermodiff.sampling.tasks",
    "inpaint": "thermodiff.sampling.tasks",
    "train": "thermodiff.training.train",
    "raw_width": "thermodiff.model.assemble",
    "chain_of": "thermodiff.sampling.chain",
    "ddim_encode": "thermodiff.sampling.ddim",
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use
    from thermodiff.config import Config, load_toml, with_overrides
    from thermodiff.data import Dataset, DataSpec, Scaling, Units, load_dataset, register_data
    from thermodiff.data.vectors import continuous_dataset
    from thermodiff.evaluation.heldout import report
    from thermodiff.evaluation.parzen import parzen_report
    from thermodiff.model.assemble import raw_width
    from thermodiff.nets import register_net
    from thermodiff.plots.draw import condition_panel
    from thermodiff.run.load import Run, load_run
    from thermodiff.sampling.ancestral import data_box, sample, sample_grid
    from thermodiff.sampling.chain import chain_of
    from thermodiff.sampling.ddim import ddim_encode
    from thermodiff.sampling.guidance import Classifier, accuracy, load_classifier
    from thermodiff.sampling.interpolate import interpolate
    from thermodiff.sampling.multipliers import (
        BernoulliMask,
        BernoulliObservation,
        ClassifierGuidance,
        GaussianObservation,
        LogDensityGradient,
        Mask,
    )
    from thermodiff.sampling.tasks import denoise, inpaint
    from thermodiff.training.train import train


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'thermodiff' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    # configs and data
    "Config",
    "load_toml",
    "with_overrides",
    "Dataset",
    "DataSpec",
    "Scaling",
    "Units",
    "continuous_dataset",
    "load_dataset",
    "register_data",
    "register_net",
    "raw_width",
    # training (train.task picks the objective: diffusion, classifier, clean_classifier)
    "train",
    # run directories
    "Run",
    "load_run",
    "Classifier",
    "load_classifier",
    # evaluation
    "report",
    "accuracy",
    "parzen_report",
    # sampling and multiplying by r(x) (P 2.5)
    "sample",
    "sample_grid",
    "chain_of",
    "ddim_encode",
    "data_box",
    "denoise",
    "inpaint",
    "interpolate",
    "GaussianObservation",
    "Mask",
    "BernoulliObservation",
    "BernoulliMask",
    "LogDensityGradient",
    "ClassifierGuidance",
    "condition_panel",
]
