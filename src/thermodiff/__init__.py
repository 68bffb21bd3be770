"""thermodiff: diffusion probabilistic models (Sohl-Dickstein et al. 2015), the bound K in bits.

The public API, one level, in the order data take: a config and its data, a network of one's own
(registered by name), training, the run directory, then evaluation, sampling and conditioning. The math
(kernels, reverse-step types, the bound's terms) is its own public sub-package, `thermodiff.diffusion`.
"""

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
