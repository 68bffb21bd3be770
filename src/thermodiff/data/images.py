"""8-bit image data sets (P 3.2): MNIST (IDX files) and image folders; CIFAR-10 in cifar.py.

Loaders return uint8 tensors (N, C, H, W). `image_dataset` is the one place where they become model-space
data: the 0..255 values as float64, shifted and scaled by one global pair to zero mean and unit variance
(Scaling.fit). Dequantization is left to training and evaluation.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from thermodiff.data import Dataset, DataSpec, Scaling
from thermodiff.data.root import data_root
from thermodiff.errors import DataError, first_line

if TYPE_CHECKING:
    from thermodiff.config.schema import DataConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
IDX_NDIM = {0x00000801: 1, 0x00000803: 3}  # IDX magic -> ndim: uint8 labels (N,), uint8 images (N, H, W)


def image_dataset(x_train: Tensor, x_test: Tensor) -> Dataset:
    """uint8 (N, C, H, W) splits -> Dataset "image8": y = (x - train mean per dim) * scale (P Table 1)."""
    for split, x in (("train", x_train), ("test", x_test)):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[0] == 0:
            raise DataError(f"{split} images: expected a non-empty uint8 (N, C, H, W) tensor, got {x.dtype}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"train images are {tuple(x_train.shape[1:])} but test images {tuple(x_test.shape[1:])}"
        )
    raw_train, raw_test = x_train.to(torch.float64), x_test.to(torch.float64)
    scaling = Scaling.fit(raw_train)
    spec = DataSpec(tuple(x_train.shape[1:]), "image8", "bits/pixel")
    return Dataset(scaling.apply(raw_train), scaling.apply(raw_test), spec, scaling, None)


def split_images(x: Tensor, n_test: int, seed: int, where: str) -> tuple[Tensor, Tensor]:
    """One split only: hold out n_test images chosen by a seeded permutation, train on the rest (labels:
    the same split of a label tensor, by the same seed)."""
    if n_test >= x.shape[0]:
        raise DataError(
            f"{where}: only one split found ({x.shape[0]} images); set data.n_test below that to hold "
            "out part of it and train on the rest"
        )
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
    return x[perm[n_test:]], x[perm[:n_test]]


# --- MNIST: IDX files ---


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file, gzipped or not -> uint8: magic 0x00000803 images (N, H, W), 0x00000801 labels (N,)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: unreadable or corrupt gzip file ({e})") from None
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic not in IDX_NDIM:
        found = "none (file too short)" if magic is None else f"0x{magic:08x}"
        raise DataError(
            f"{path}: IDX magic number {found}, expected 0x00000803 (images) or 0x00000801 (labels)"
        )
    header = 4 + 4 * IDX_NDIM[magic]
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, header alone needs {header})")
    shape = struct.unpack(f">{IDX_NDIM[magic]}I", raw[4:header])
    if len(raw) - header != math.prod(shape):
        raise DataError(
            f"{path}: truncated or padded IDX file: header says {shape} = {math.prod(shape)} bytes "
            f"of data, found {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, math.prod(shape), header).reshape(shape).copy()


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array, 1-D (labels) or 3-D (images), as an IDX file (gzipped if path ends .gz)."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: 0x801, 3: 0x803}[a.ndim]
    data = struct.pack(f">I{a.ndim}I", magic, *a.shape) + a.tobytes()
    Path(path).write_bytes(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def _find_file(root: Path, patterns: tuple[str, ...]) -> Path | None:
    """The one file matching `patterns` in root, else in its subfolders (x.gz dropped when x exists)."""
    for folders in ([root], sorted(d for d in root.iterdir() if d.is_dir())):
        found = {p for d in folders for pat in patterns for p in d.glob(pat) if p.is_file()}
        found = sorted(p for p in found if not (p.suffix == ".gz" and p.with_suffix("") in found))
        if len(found) > 1:
            names = ", ".join(str(p.relative_to(root)) for p in found)
            raise DataError(f"{root}: several files match {patterns[0]!r} ({names}); point data.path at one")
        if found:
            return found[0]
    return None


def _idx_labels(images: Path, n: int) -> Tensor | None:
    """The labels file beside an images file (`images` -> `labels`, `idx3` -> `idx1`), or None."""
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    for p in (images.with_name(name), images.with_name(name.removesuffix(".gz"))):
        if p.is_file():
            y = read_idx(p)
            if y.ndim != 1 or y.shape[0] != n:
                raise DataError(f"{p}: {y.shape[0]} labels for {n} images in {images.name}")
            return torch.from_numpy(y.astype(np.int64))
    return None


def mnist_arrays(path: str | Path) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
    """MNIST from a folder holding '*train-images*' and 't10k-images*' IDX files, or whose subfolders do.

    Returns x_train uint8 (N, 1, H, W), y_train int64 (N,) or None, x_test, y_test (labels: the file
    named like the images file with 'images' -> 'labels', in the same folder; None where absent)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"MNIST folder not found: {root} (data.path must name a folder of IDX files)")
    out: list[Tensor | None] = []
    for split, patterns in (("train", ("*train-images*",)), ("test", ("t10k-images*", "*test-images*"))):
        p = _find_file(root, patterns)
        if p is None:
            raise DataError(
                f"{root}: no MNIST {split} images ({' or '.join(patterns)}) here or in subfolders"
            )
        x = read_idx(p)
        if x.ndim != 3:
            raise DataError(f"{p}: holds labels (magic 0x801), expected images (magic 0x803)")
        out += [torch.from_numpy(x[:, None]), _idx_labels(p, x.shape[0])]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise DataError(f"{root}: train images are {tuple(out[0].shape[2:])}, test {tuple(out[2].shape[2:])}")
    return out[0], out[1], out[2], out[3]


def mnist(cfg: DataConfig) -> Dataset:
    """MNIST as 8-bit images (P 3.2): the first n_train training and n_test test images."""
    x_train, y_train, x_test, y_test = mnist_arrays(Path(cfg.path) if cfg.path else data_root("MNIST"))
    ds = image_dataset(x_train[: cfg.n_train], x_test[: cfg.n_test])
    ds.labels_train = None if y_train is None else y_train[: cfg.n_train]
    ds.labels_test = None if y_test is None else y_test[: cfg.n_test]
    return ds


# --- image folders (a directory or a .zip of PNG / JPEG / GIF files) ---


def _image_files(source: Path, under: str) -> Iterator[tuple[str, io.BufferedIOBase]]:
    """(name, open binary file) for each image under `under`, sorted by name; .zip or directory."""
    if source.is_file():
        try:
            zf = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as e:
            raise DataError(f"{source}: not a readable zip file ({e})") from None
        with zf:
            for name in sorted(zf.namelist()):
                if name.lower().endswith(IMAGE_SUFFIXES) and name.startswith(under):
                    with zf.open(name) as f:
                        yield name, f
        return
    for p in sorted((source / under).rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            with open(p, "rb") as f:
                yield p.relative_to(source).as_posix(), f


def decode_image(f, name: str, size: int | None = None, grayscale: bool = False) -> np.ndarray:
    """One 8-bit image file -> uint8 (H, W, C), C = 1 if grayscale (a colour image is an error) else 3."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit: refused
            with Image.open(f) as im:
                if im.mode in ("I", "F") or im.mode.startswith("I;"):
                    raise DataError(f"{name}: {im.mode} image (16-bit or float), expected 8 bits per channel")
                rgb = im.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # PIL's pixel limit
        raise DataError(f"{name}: too many pixels to decode ({first_line(e)})") from None
    except (OSError, SyntaxError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{name}: not a readable image ({e})") from None
    if size:
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    a = np.asarray(rgb)
    if grayscale:
        if not ((a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all()):
            raise DataError(f"{name}: a colour image where grayscale is expected")
        a = a[..., :1]
    return a


def read_images(
    source: Path, size: int | None = None, grayscale: bool = False, under: str = "", missing_ok: bool = False
) -> tuple[list[str], Tensor | None]:
    """All images of a folder or .zip -> names, uint8 (N, C, H, W); every shape equal unless size is given."""
    if not source.exists():
        raise DataError(f"image folder or zip not found: {source}")
    names: list[str] = []
    arrays: list[np.ndarray] = []
    for name, f in _image_files(source, under):
        a = decode_image(f, f"{source}/{name}", size, grayscale)
        if arrays and a.shape != arrays[0].shape:
            raise DataError(
                f"{source}/{name}: shape {a.shape} (H, W, C) differs from {names[0]}'s "
                f"{arrays[0].shape}; give a size to resize every image"
            )
        names.append(name)
        arrays.append(a)
    if not arrays:
        if missing_ok:
            return [], None
        raise DataError(f"{source}: no PNG, JPEG or GIF files{f' under {under}' if under else ''}")
    return names, torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())


def image_folder(path: str | Path, size: int | None = None, grayscale: bool = False) -> Tensor:
    """Every PNG / JPEG / GIF in a folder (recursively) or .zip, sorted by name -> uint8 (N, C, H, W)."""
    return read_images(Path(path), size, grayscale)[1]


def class_labels(names: list[str], under: str, classes: list[str] | None = None) -> tuple[Tensor, list[str]]:
    """torchvision's ImageFolder layout: each image in one sub-folder per class -> int64 labels, the
    k-th class the k-th sub-folder in sorted order (`classes`: those of the train split)."""
    folders = [n[len(under) :].split("/")[0] for n in names]
    classes = classes if classes is not None else sorted(set(folders))
    missing = sorted(set(folders) - set(classes))
    if missing:
        raise DataError(f"{under}{missing[0]}/: a class folder that the train images do not have")
    return torch.tensor([classes.index(f) for f in folders], dtype=torch.int64), classes


def _in_class_folders(names: list[str], under: str) -> bool:
    """Whether every image lies exactly one folder below `under` (the class sub-folders)."""
    return bool(names) and all(n[len(under) :].count("/") == 1 for n in names)


def image_folder_dataset(cfg: DataConfig) -> Dataset:
    """data.path = a folder or .zip with train/ and test/ images, or one set split by seeded hold-out;
    images in one sub-folder per class (torchvision's ImageFolder) carry the class labels."""
    if not cfg.path:
        raise DataError("data.path must name a folder or .zip of PNG, JPEG or GIF images")
    source, size = Path(cfg.path), cfg.resize or None
    names_train, x_train = read_images(source, size, cfg.grayscale, "train/", missing_ok=True)
    names_test, x_test = read_images(source, size, cfg.grayscale, "test/", missing_ok=True)
    labels_train = labels_test = None
    if x_train is None or x_test is None:
        names, x = read_images(source, size, cfg.grayscale)
        labelled = _in_class_folders(names, "")
        labels = class_labels(names, "")[0] if labelled else torch.zeros(len(names), dtype=torch.int64)
        x_train, x_test = split_images(x, cfg.n_test, cfg.seed, str(source))
        labels_train, labels_test = split_images(labels, cfg.n_test, cfg.seed, str(source))
        if not labelled:
            labels_train = labels_test = None
    elif _in_class_folders(names_train, "train/") and _in_class_folders(names_test, "test/"):
        labels_train, classes = class_labels(names_train, "train/")
        labels_test = class_labels(names_test, "test/", classes)[0]
    ds = image_dataset(x_train[: cfg.n_train], x_test[: cfg.n_test])
    ds.labels_train = None if labels_train is None else labels_train[: cfg.n_train]
    ds.labels_test = None if labels_test is None else labels_test[: cfg.n_test]
    return ds
