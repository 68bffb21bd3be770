"""The running window of per-step statistics between two metric records, carried in a checkpoint so
that a resume stopped between two records writes the same next record as the straight run."""

from __future__ import annotations

import torch
from torch import Tensor

from thermodiff.training import distributed as dist


def window_state(window: list[Tensor]) -> dict:
    """{"window": every rank's statistics since the last record, (ranks, steps, ...)} for train_state.pt
    (a collective under DDP: every rank calls it); {} when the window is empty."""
    if not window:
        return {}
    return {"window": dist.gather(torch.stack([w.detach() for w in window]))}


def window_of(state: dict, device: torch.device | str) -> list[Tensor]:
    """This rank's window saved by window_state; [] if none was saved (a checkpoint at a record, or
    written before windows were saved) or it was saved by another number of processes."""
    saved = state.get("window")
    if not isinstance(saved, Tensor) or saved.ndim < 2 or saved.shape[0] != dist.world_size():
        return []
    return list(saved[dist.rank()].to(device).unbind(0))
