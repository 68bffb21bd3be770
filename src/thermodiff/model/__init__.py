"""The model a run trains: schedule + kernel + reverse parameterization + network, and how the network
is called on a GPU (fast.py). Joins diffusion/ (the math) and nets/ (the networks)."""
