"""Checkpoints: safetensors weights + JSON metadata + a weights_only training state; atomic writes.

Layout: RUN/checkpoints/step_0000100/{weights.safetensors, meta.json, train_state.pt} and
RUN/checkpoints/LATEST naming the newest complete one. A checkpoint directory is written under a
temporary name and renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from thermodiff.errors import CheckpointError

FORMAT = "thermodiff-checkpoint-1"
KEEP = 2


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same directory and os.replace."""
    atomic_write_bytes(path, text.encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to path via a temporary file in the same directory and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    run_dir: Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write one checkpoint atomically and point LATEST at it; prune all but the newest KEEP."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            tmp / "weights.safetensors",
        )
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "step": step, **meta}, indent=1))
        if train_state is not None:
            torch.save(train_state, tmp / "train_state.pt")
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "LATEST", name + "\n")
    for old in sorted(root.glob("step_*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path:
    """The checkpoint directory named by RUN/checkpoints/LATEST."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    pointer = run_dir / "checkpoints" / "LATEST"
    if not pointer.is_file():
        raise CheckpointError(f"{run_dir} has no checkpoint (missing checkpoints/LATEST)")
    path = run_dir / "checkpoints" / pointer.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"checkpoints/LATEST names {path.name}, which does not exist")
    return path


def load_checkpoint(path: Path, with_train_state: bool = False) -> tuple[dict, dict, dict | None]:
    """(tensors, meta, train_state) from a checkpoint directory; never unpickles arbitrary objects."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}/meta.json is missing or corrupt ({type(e).__name__})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}/meta.json is not a {FORMAT} file")
    try:
        tensors = load_file(path / "weights.safetensors")
    except (OSError, SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}/weights.safetensors is missing or corrupt ({_first_line(e)})"
        ) from None
    state = None
    if with_train_state:
        try:
            state = torch.load(path / "train_state.pt", weights_only=True, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a corrupt file
            raise CheckpointError(
                f"{path}/train_state.pt is missing or corrupt ({type(e).__name__})"
            ) from None
    return tensors, meta, state


def generator_state(gen: torch.Generator) -> dict:
    """A training stream's state for train_state.pt, with the device type it belongs to."""
    return {"generator": gen.get_state(), "generator_device": gen.device.type}


def restore_generator(gen: torch.Generator, state: dict) -> None:
    """gen.set_state from train_state.pt; a CPU stream and a CUDA stream are different generators, so
    a run resumes exactly only on the device type it was trained on."""
    saved = state.get("generator_device", gen.device.type)
    if saved != gen.device.type:
        raise CheckpointError(
            f"this run's random stream was saved on {saved} and cannot continue on {gen.device.type}: "
            f"resume it with --device {saved}"
        )
    try:
        gen.set_state(state["generator"])
    except RuntimeError as e:  # a state without its device type, written on another device
        raise CheckpointError(
            f"this run's random stream does not fit a {gen.device.type} generator ({_first_line(e)})"
        ) from None


def _first_line(e: Exception) -> str:
    """An exception as one line of an error message (CLI errors are one line)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__
