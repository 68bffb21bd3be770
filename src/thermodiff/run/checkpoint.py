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
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from thermodiff.errors import CheckpointError, ConfigError, first_line

FORMAT = "thermodiff-checkpoint-1"
KEEP = 2


def check_writable(path: Path | str) -> Path:
    """A file about to be written: not a directory, and the first existing folder above it writable.
    Checked before the work that produces it, so a bad path costs nothing."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"cannot write {path}: it is a directory")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write {path}: {folder} is not a writable folder")
    return path


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
    name = f"step_{step:08d}"
    try:
        return _write_checkpoint(root, name, step, tensors, meta, train_state)
    except (OSError, SafetensorError, RuntimeError) as e:  # a full disk: torch.save says "unexpected pos"
        why = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
        if "unexpected pos" in why:  # torch.save's short write
            why = f"No space left on device? torch.save: {why}"
        kept = "the previous checkpoint is kept" if (root / "LATEST").exists() else "nothing saved"
        raise CheckpointError(f"cannot write checkpoint {name} in {root} ({why}); {kept}") from None


def _write_checkpoint(root: Path, name: str, step: int, tensors: dict, meta: dict, train_state) -> Path:
    root.mkdir(parents=True, exist_ok=True)
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
        for f in tmp.iterdir():  # readable by others as any file the user writes (safetensors: 0600)
            os.chmod(f, 0o666 & ~_umask())
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


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run has saved a checkpoint yet (one killed before or during its first has not)."""
    root = Path(run_dir) / "checkpoints"  # step_* without LATEST: latest_checkpoint says what is wrong
    return (root / "LATEST").exists() or any(root.glob("step_*"))


def latest_checkpoint(run_dir: Path) -> Path:
    """The checkpoint directory named by RUN/checkpoints/LATEST."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    pointer = run_dir / "checkpoints" / "LATEST"
    if not pointer.is_file():
        raise CheckpointError(f"{run_dir} has no checkpoint (missing checkpoints/LATEST)")
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{pointer} is unreadable ({first_line(e)})") from None
    path = run_dir / "checkpoints" / name
    if not name.startswith("step_") or "/" in name or not path.is_dir():
        raise CheckpointError(f"checkpoints/LATEST names {name!r}, which does not exist in {run_dir}")
    return path


def load_checkpoint(path: Path, with_train_state: bool = False) -> tuple[dict, dict, dict | None]:
    """(tensors, meta, train_state) from a checkpoint directory; never unpickles arbitrary objects."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError: ValueErrors
        raise CheckpointError(f"{path}/meta.json is {_unreadable(e)}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}/meta.json is not a {FORMAT} file")
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
        raise CheckpointError(f"{path}/meta.json: step must be an integer in [0, 2**63), not {step!r}")
    if not isinstance(meta.get("config", {}), dict):
        raise CheckpointError(f"{path}/meta.json: config must be a JSON object")
    try:
        open(path / "weights.safetensors", "rb").close()  # safetensors says "No such file" for EACCES
        tensors = load_file(path / "weights.safetensors")
    except (OSError, SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}/weights.safetensors is {_unreadable(e)}") from None
    state = None
    if with_train_state:
        try:
            with warnings.catch_warnings():  # torch warns about refused pickles; the error says it
                warnings.simplefilter("ignore")
                state = torch.load(path / "train_state.pt", weights_only=True, map_location="cpu")
            if not isinstance(state, dict):
                raise TypeError("not a dictionary")
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a corrupt file
            raise CheckpointError(f"{path}/train_state.pt is {_unreadable(e)}") from None
    return tensors, meta, state


def _unreadable(e: BaseException) -> str:
    """Why a checkpoint file cannot be read, as the rest of a one-line message."""
    if isinstance(e, PermissionError):
        return "not readable (permission denied)"
    if isinstance(e, RecursionError):
        return "corrupt (nested too deeply)"
    detail = first_line(e) if isinstance(e, (SafetensorError, RuntimeError)) else type(e).__name__
    return f"missing or corrupt ({detail})"


def state_dict_under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under `prefix` ("net.", "ema.net."), keyed as the module's state_dict."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


@contextmanager
def must_fit(where: Path, what: str = "does not fit this run") -> Iterator[None]:
    """Loading a checkpoint into a model: a tensor, state or saved config that does not fit it is one
    CheckpointError, '{where}: {what} (the first line of the cause)'."""
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, ConfigError) as e:
        raise CheckpointError(f"{where}: {what} ({first_line(e)})") from None


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
            f"this run's random stream does not fit a {gen.device.type} generator ({first_line(e)})"
        ) from None
