"""Binary data sets: the heartbeat sequences (P 3.1.2, App. D.1.2) and binarized MNIST (read from disk).

Binary data are used as they are (model space = raw space, Scaling.identity), values 0/1 in float64.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from thermodiff.data import Dataset, DataSpec, Scaling
from thermodiff.data.root import data_root
from thermodiff.errors import DataError, first_line

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig

HEARTBEAT_LEN = 20
HEARTBEAT_PERIOD = 5
MNIST_FILE = Path("binarized-mnist") / "binarized_mnist.npz"


# --- heartbeat ---


def heartbeat_sequences() -> Tensor:
    """The 5 valid sequences (5, 20): a 1 every 5th bin, row k has its first pulse in bin k."""
    x = torch.zeros(HEARTBEAT_PERIOD, HEARTBEAT_LEN, dtype=torch.float64)
    for first in range(HEARTBEAT_PERIOD):
        x[first, first::HEARTBEAT_PERIOD] = 1.0
    return x


def heartbeat_sample(n: int, seed: int) -> Tensor:
    """n sequences, the first pulse uniform over bins 0..4 (torch.Generator seeded by `seed`)."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(HEARTBEAT_PERIOD, (n,), generator=g)
    return heartbeat_sequences()[first]


def heartbeat_log_prob(x: Tensor) -> Tensor:
    """log p(x) in nats: log(1/5) for each of the 5 valid sequences, -inf for any other row."""
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    valid = (x[:, None, :] == heartbeat_sequences().to(x.device)[None]).all(-1).any(-1)
    return torch.where(
        valid,
        torch.full_like(x[:, 0], -math.log(HEARTBEAT_PERIOD)),
        torch.full_like(x[:, 0], -math.inf),
    )


def heartbeat(cfg: DataConfig) -> Dataset:
    """Heartbeat: n_train / n_test sequences drawn with seeds cfg.seed / cfg.seed + 1 (P 3.1.2)."""
    spec = DataSpec((HEARTBEAT_LEN,), "binary", "bits/sequence")
    return Dataset(
        heartbeat_sample(cfg.n_train, cfg.seed),
        heartbeat_sample(cfg.n_test, cfg.seed + 1),
        spec,
        Scaling.identity(HEARTBEAT_LEN),
        heartbeat_log_prob,
    )


# --- binarized MNIST ---


def _mnist_split(arrays, key: str, n: int, path: Path, seed: int | None = None) -> Tensor:
    """Rows of one split as (N, 1, 28, 28) float64; with `seed`, a fixed permutation first."""
    if key not in arrays:
        raise DataError(f"{path}: no array {key!r} (found: {', '.join(arrays.files)})")
    a = arrays[key]
    if a.ndim != 2 or a.shape[1] != 28 * 28:
        raise DataError(f"{path}: {key!r} has shape {a.shape}, expected (N, 784)")
    if seed is not None:
        a = a[np.random.default_rng(seed).permutation(a.shape[0])]
    a = a[:n]
    if not np.isin(a, (0, 1)).all():
        raise DataError(f"{path}: {key!r} holds values other than 0 and 1")
    return torch.from_numpy(a.astype(np.float64)).reshape(-1, 1, 28, 28)


def binarized_mnist(cfg: DataConfig) -> Dataset:
    """Binarized MNIST (fixed binarization): the 50k train split and the 10k test split, capped by
    n_train / n_test (test rows in a fixed order shuffled by data.seed + 1, since the file stores
    them sorted by class); shape (1, 28, 28), float64 0/1. Read from data.path or data_root()."""
    path = Path(cfg.path) if cfg.path else data_root("binarized MNIST") / MNIST_FILE
    if path.is_dir():
        path = path / MNIST_FILE.name
    if not path.is_file():
        raise DataError(
            f"binarized MNIST not found at {path}: set data.path=FILE.npz "
            "(or THERMODIFF_DATA to the folder holding binarized-mnist/)"
        )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            train = _mnist_split(arrays, "train", cfg.n_train, path)
            # the test split is ordered by class (README): shuffle (seed + 1) so that a cap is fair
            test = _mnist_split(arrays, "test", cfg.n_test, path, seed=cfg.seed + 1)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        msg = first_line(e)
        raise DataError(f"{path}: not a readable .npz file ({msg})") from None
    spec = DataSpec((1, 28, 28), "binary", "bits/image")
    return Dataset(train, test, spec, Scaling.identity(28 * 28))
