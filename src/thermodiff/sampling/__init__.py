"""Sampling: the ancestral generator, multipliers r(x) (denoise, inpaint, guidance), interpolation."""
