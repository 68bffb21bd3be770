"""The math of diffusion probabilistic models. Imports torch only: the network arrives as a callable."""

from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.bound import BoundTerms, bound_exact, bound_stochastic, kl_at, to_bits
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.kernel import KERNELS, Kernel
from thermodiff.diffusion.reverse import BernoulliReverse, EpsReverse, PaperReverse, Reverse, make_reverse
from thermodiff.diffusion.schedules import Schedule, make_schedule
from thermodiff.diffusion.steps import (
    BernoulliProb,
    BernoulliStep,
    FullGaussianStep,
    GaussianStep,
    PointStep,
    Step,
)

__all__ = [
    "KERNELS",
    "BoundTerms",
    "BernoulliProb",
    "BernoulliReverse",
    "BernoulliStep",
    "BinomialKernel",
    "EpsReverse",
    "FullGaussianStep",
    "GaussianKernel",
    "GaussianStep",
    "PointStep",
    "Kernel",
    "PaperReverse",
    "Reverse",
    "Schedule",
    "Step",
    "bound_exact",
    "bound_stochastic",
    "kl_at",
    "make_reverse",
    "make_schedule",
    "to_bits",
]
