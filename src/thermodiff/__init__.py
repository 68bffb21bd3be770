"""thermodiff: diffusion probabilistic models (Sohl-Dickstein et al. 2015), the bound K in bits."""

from thermodiff.config import Config, load_toml
from thermodiff.data import Units, load_dataset, register_data
from thermodiff.diffusion import (
    BernoulliStep,
    BinomialKernel,
    FullGaussianStep,
    GaussianKernel,
    GaussianStep,
    Kernel,
    bound_exact,
    bound_stochastic,
    make_reverse,
    make_schedule,
    to_bits,
)
from thermodiff.evaluation.heldout import report
from thermodiff.nets import register_net
from thermodiff.run.load import Run, load_run
from thermodiff.sampling.ancestral import p_sample_loop_progressive, sample
from thermodiff.sampling.guidance import load_classifier
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
from thermodiff.training.train import train, train_classifier

__version__ = "0.1.0"

__all__ = [
    "BernoulliMask",
    "BernoulliObservation",
    "BernoulliStep",
    "BinomialKernel",
    "ClassifierGuidance",
    "Config",
    "FullGaussianStep",
    "GaussianKernel",
    "GaussianObservation",
    "GaussianStep",
    "Kernel",
    "LogDensityGradient",
    "Mask",
    "Run",
    "Units",
    "bound_exact",
    "bound_stochastic",
    "denoise",
    "inpaint",
    "interpolate",
    "load_classifier",
    "load_dataset",
    "load_run",
    "load_toml",
    "make_reverse",
    "make_schedule",
    "p_sample_loop_progressive",
    "register_data",
    "register_net",
    "report",
    "sample",
    "to_bits",
    "train",
    "train_classifier",
]
