"""CIFAR-10 (P 3.2) from the python batches, read by a restricted unpickler, or from image files.

Both forms give uint8 (N, 3, 32, 32) and labels 0..9 in the canonical class order (alphabetical).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from thermodiff.data import Dataset
from thermodiff.data.images import image_dataset, read_images, split_images
from thermodiff.data.root import data_root
from thermodiff.errors import DataError

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# --- restricted unpickling: numpy arrays and plain containers only ---


def _numpy_global(new: str, old: str, name: str):
    try:
        return getattr(__import__(new, fromlist=[name]), name)
    except (ImportError, AttributeError):
        return getattr(__import__(old, fromlist=[name]), name)


_RECONSTRUCT = _numpy_global("numpy._core.multiarray", "numpy.core.multiarray", "_reconstruct")
_FROMBUFFER = _numpy_global("numpy._core.numeric", "numpy.core.numeric", "_frombuffer")  # protocol 5
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (only numpy arrays are allowed)")
        return _PICKLE_GLOBALS[(module, name)]


def safe_unpickle(data: bytes, where: str = "pickle"):
    """Restricted pickle.load (encoding='bytes', as Python 2 pickles need); DataError on anything else."""
    try:
        return ArraysOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # a corrupt pickle can raise almost anything; none of it may escape as-is
        raise DataError(f"{where}: not a safe, readable pickle ({type(e).__name__}: {e})") from None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch: dict with b'data' (N, 3072) uint8 rows (R, G, B planes) and b'labels'."""
    d = safe_unpickle(path.read_bytes(), str(path))
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()} if isinstance(d, dict) else {}
    x, y = d.get("data"), np.asarray(d.get("labels", []), dtype=np.int64)
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: not a CIFAR-10 batch (expected a dict with b'data' of shape (N, 3072) uint8)"
        )
    if y.shape != (x.shape[0],):
        raise DataError(f"{path}: {y.size} labels for {x.shape[0]} images")
    return x.reshape(-1, 3, 32, 32), y


def _cifar_source(root: Path) -> Path | None:
    """root or its first subfolder that holds test_batch, train/ or test/ folders, or exactly one .zip."""
    if root.is_file():
        return root
    for d in [root, *sorted(d for d in root.iterdir() if d.is_dir())]:
        zips = sorted(d.glob("*.zip"))
        if (d / "test_batch").is_file() or (d / "train").is_dir() or (d / "test").is_dir():
            return d
        if len(zips) == 1:
            return zips[0]
    return None


def cifar10_arrays(path: str | Path) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor]:
    """CIFAR-10 from the python batches (data_batch_*, test_batch) or from images stored as
    {train,test}/<class>/<file> in a folder or .zip -> x_train, y_train (None if absent), x_test, y_test."""
    root = Path(path)
    source = _cifar_source(root) if root.exists() else None
    if source is None:
        raise DataError(
            f"CIFAR-10 not found at {root} (expected test_batch, train/ and test/ folders, or a .zip)"
        )
    if (source / "test_batch").is_file():
        x_test, y_test = _cifar_batch(source / "test_batch")
        batches = sorted(source.glob("data_batch_*"))
        parts = [_cifar_batch(p) for p in batches]
        if not parts:
            return None, None, torch.from_numpy(x_test), torch.from_numpy(y_test)
        x_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return tuple(torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test))
    out: list[Tensor | None] = []
    for split in ("train", "test"):
        names, x = read_images(source, under=f"{split}/", missing_ok=True)
        if x is not None and tuple(x.shape[1:]) != (3, 32, 32):
            raise DataError(f"{source}: {split} images are {tuple(x.shape[1:])}, CIFAR-10 needs (3, 32, 32)")
        classes = [n.split("/")[1] if n.count("/") >= 2 else "" for n in names]
        bad = next((n for n, c in zip(names, classes, strict=True) if c not in CIFAR10_CLASSES), None)
        if bad is not None:
            raise DataError(
                f"{source}: {bad} is not under a CIFAR-10 class folder ({', '.join(CIFAR10_CLASSES)})"
            )
        out += [x, None if x is None else torch.tensor([CIFAR10_CLASSES.index(c) for c in classes])]
    if out[2] is None:
        raise DataError(f"{source}: no test/ images (PNG, JPEG or GIF under test/<class>/)")
    return out[0], out[1], out[2], out[3]


def cifar10(cfg: DataConfig) -> Dataset:
    """CIFAR-10 (P 3.2); given only a test split (the JPEG zip): n_test held out, the rest for training."""
    path = Path(cfg.path) if cfg.path else data_root("CIFAR-10")
    x_train, _, x_test, _ = cifar10_arrays(path)
    if x_train is None:
        x_train, x_test = split_images(x_test, cfg.n_test, cfg.seed, str(path))
    return image_dataset(x_train[: cfg.n_train], x_test[: cfg.n_test])
