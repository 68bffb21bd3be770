"""Figures (matplotlib, Agg): Figure 1, sample grids, conditioning panels."""
