"""The math of diffusion probabilistic models. Imports torch only: the network arrives as a callable."""

from thermodiff.diffusion.binomial import BinomialKernel
from thermodiff.diffusion.bound import BoundTerms, bound_exact, bound_stochastic, kl_at, to_bits
from thermodiff.diffusion.gaussian import GaussianKernel
from thermodiff.diffusion.reverse import BernoulliReverse, EpsReverse, PaperReverse, make_reverse
from thermodiff.diffusion.schedules import Schedule, make_schedule

__all__ = [
    "BoundTerms",
    "BernoulliReverse",
    "BinomialKernel",
    "EpsReverse",
    "GaussianKernel",
    "PaperReverse",
    "Schedule",
    "bound_exact",
    "bound_stochastic",
    "kl_at",
    "make_reverse",
    "make_schedule",
    "to_bits",
]
