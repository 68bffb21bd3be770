"""The run directory: checkpoints (safetensors + JSON, atomic), what a run stores, loading it back."""
