"""Training: the loop, its objectives, and DDP (distributed.py, the only user of torch.distributed)."""
