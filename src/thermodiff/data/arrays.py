"""Arrays in a file (data.name = "array", data.path = .npy, .npz or .csv): the file's shape and values say
what the data are. (N, D) numbers: continuous vectors, standardized as every continuous set (one global
shift and scale); (N, D) all 0 or 1: binary (the binomial kernel, P 2.2); uint8 (N, H, W) or (N, H, W, C):
8-bit images (P 3.2). A .npz holds `train` and `test`, or one array split by data.holdout (seed data.seed).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from thermodiff.data import Dataset, DataSpec, Scaling
from thermodiff.data.images import image_dataset
from thermodiff.data.vectors import continuous_dataset
from thermodiff.errors import DataError, first_line

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig

SUFFIXES = (".npy", ".npz", ".csv")


def read_csv(path: Path) -> np.ndarray:
    """Numeric columns separated by commas -> float64 (N, D); a first row that is not numbers is a header."""
    rows: list[list[float]] = []
    first = True
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(f) for f in line.split(",")]
        except ValueError:
            if first:  # the header
                first = False
                continue
            raise DataError(f"{path}: line {i} is not all numbers ({line.strip()[:40]!r})") from None
        first = False
        if rows and len(values) != len(rows[0]):
            raise DataError(f"{path}: line {i} has {len(values)} columns, the lines before {len(rows[0])}")
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: no rows of numbers")
    return np.asarray(rows, dtype=np.float64)


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(train, test or None) from a .npy, .npz or .csv file; one-line DataErrors naming the file."""
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: data.name = 'array' reads {', '.join(SUFFIXES)} files, not {path.suffix!r}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".csv":
        try:
            return read_csv(path), None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file of comma-separated numbers") from None
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as loaded:
            names = list(loaded.files)
            if "train" in names:
                return loaded["train"], loaded["test"] if "test" in names else None
            if len(names) == 1:
                return loaded[names[0]], None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable {path.suffix} file ({first_line(e)})") from None
    raise DataError(f"{path}: holds arrays {', '.join(names)}: name them train and test, or keep one")


def kind_of(a: np.ndarray, path: Path, split: str) -> str:
    """ "binary", "continuous" or "image8" from an array's shape, dtype and values."""
    where = f"{path}: the {split} array" if split else f"{path}: the array"
    if a.dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {a.dtype}: expected numbers (bool, integer or float)")
    if a.ndim in (3, 4):
        if a.dtype != np.uint8:
            raise DataError(
                f"{where} is {a.ndim}-D {a.dtype}: images must be uint8 (N, H, W[, C]), vectors 2-D"
            )
        if a.ndim == 4 and not 1 <= a.shape[3] <= 4:
            raise DataError(f"{where} has shape {a.shape}: images are (N, H, W, C) with 1 to 4 channels")
        return "image8"
    if a.ndim != 2:
        raise DataError(
            f"{where} has shape {a.shape}: expected (N, D) vectors or (N, H, W[, C]) uint8 images"
        )
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{where} holds NaN or infinite values")
    return "binary" if np.isin(a, (0, 1)).all() else "continuous"


def split_rows(a: np.ndarray, holdout: float, seed: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One array -> (train, test): round(holdout * N) rows, chosen by a permutation seeded by `seed`."""
    n_test = round(holdout * a.shape[0])
    if n_test < 1 or a.shape[0] - n_test < 2:
        raise DataError(
            f"{path}: {a.shape[0]} rows are too few to hold out data.holdout = {holdout} for test "
            "and train on at least 2"
        )
    perm = np.random.default_rng(seed).permutation(a.shape[0])
    return a[perm[n_test:]], a[perm[:n_test]]


def array_dataset(cfg: DataConfig) -> Dataset:
    """data.path -> a Dataset of the kind its array is, the first n_train / n_test rows of each split."""
    if not cfg.path:
        raise DataError("data.name = 'array' needs data.path = a .npy, .npz or .csv file")
    path = Path(cfg.path)
    train, test = read_arrays(path)
    if test is None:
        kind_of(train, path, "")
        train, test = split_rows(train, cfg.holdout, cfg.seed, path)
    kind, test_kind = kind_of(train, path, "train"), kind_of(test, path, "test")
    if train.shape[1:] != test.shape[1:]:
        raise DataError(f"{path}: train rows have shape {train.shape[1:]}, test rows {test.shape[1:]}")
    if (kind == "binary" or "image8" in (kind, test_kind)) and kind != test_kind:
        raise DataError(f"{path}: the train array is {kind}, the test array {test_kind}")
    train, test = train[: cfg.n_train], test[: cfg.n_test]
    if train.shape[0] < 2 or test.shape[0] < 1:
        raise DataError(
            f"{path}: {train.shape[0]} train and {test.shape[0]} test rows: need 2 and 1 at least"
        )
    if kind == "image8":
        x = [
            torch.from_numpy(np.ascontiguousarray(a if a.ndim == 4 else a[..., None])) for a in (train, test)
        ]
        return image_dataset(*(t.permute(0, 3, 1, 2).contiguous() for t in x))
    x_train, x_test = (torch.from_numpy(a.astype(np.float64)) for a in (train, test))
    if kind == "binary":
        d = x_train.shape[1]
        return Dataset(x_train, x_test, DataSpec((d,), "binary", "bits/example"), Scaling.identity(d))
    return continuous_dataset(x_train, x_test, "bits/example")
