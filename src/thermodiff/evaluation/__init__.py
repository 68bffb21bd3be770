"""Evaluation: K on held-out data with standard errors, Parzen windows, the paper's reproductions."""
